// The compose test (npm run test:compose): a real Docker engine, prepared by test/compose/run.ts, which
// starts jest with this configuration. One file at a time: each brings up a whole stack.
const base = require('../../jest.config.js');

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  rootDir: '../..',
  roots: ['<rootDir>/test/compose'],
  testMatch: ['**/*.test.ts'],
  transform: base.transform,
  // The same ES-module-only packages compiled for jest as in the main suites (otplib's dependencies).
  transformIgnorePatterns: base.transformIgnorePatterns,
  // Deadlines that catch hangs: a first build, or a stack that never becomes healthy.
  testTimeout: 900000,
  maxWorkers: 1,
};
