export { parseJsonExact, stringifyJsonExact } from '../values/json-exact.js';
