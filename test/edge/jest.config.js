// The edge suites (npm run test:edge): test/edge/run.ts starts jest with this configuration inside the
// edge runner container, where nginx is the release the stack ships.
const base = require('../../jest.config.js');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  rootDir: '../..',
  roots: ['<rootDir>/test/edge'],
  testPathIgnorePatterns: ['/node_modules/'],
};
