export { JsonText } from './value.js';
