export { importUnit } from './run-unit.js';
