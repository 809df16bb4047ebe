// Tests are TypeScript compiled per file by SWC: fast, and no type checking at test time
// (`npm run typecheck` does that once for the whole tree).
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // The compose test needs a Docker engine and runs on its own: npm run test:compose.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/compose/', '<rootDir>/test/edge/'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'typescript' }, target: 'es2024' }, module: { type: 'commonjs' } },
    ],
    // otplib's base32 and HMAC plugins ship ES modules only. Node 24 loads them from the app's CommonJS
    // (require(esm)); jest's own module system does not, so it compiles these two packages to CommonJS.
    '/node_modules/@(scure|noble)/.+\\.js$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2024' }, module: { type: 'commonjs' } },
    ],
  },
  // Every other dependency is loaded as published (wherever npm nested these two, they are compiled).
  transformIgnorePatterns: ['^(?!.*/node_modules/@(scure|noble)/).*/node_modules/'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  // A deadline that catches hangs, not a speed claim: the slowest tests wait out short session timeouts.
  testTimeout: 30000,
  maxWorkers: 2,
  // `npm test` prints a summary of the coverage of src/ (V8's own counters: no instrumentation step);
  // `npm run coverage` adds the per-file table and an lcov report in coverage/.
  collectCoverageFrom: ['<rootDir>/src/**/*.ts', '!<rootDir>/src/types/**'],
  coverageProvider: 'v8',
  coverageReporters: ['text-summary'],
};
