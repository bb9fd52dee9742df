export { parseJsonExact, stringifyJsonExact } from './value.js';
