export { parseJsonExact, stringifyJsonExact } from '../values/value.js';
