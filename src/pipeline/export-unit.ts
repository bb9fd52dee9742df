export { exportUnit } from './run-unit.js';
