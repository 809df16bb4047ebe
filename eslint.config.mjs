import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // Configuration is parsed once, in config/; everything else receives it.
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message: 'Read configuration through loadConfig() in config/.',
        },
      ],
    },
  },
  {
    // The process entry points hand process.env to loadConfig(); tests and the bench build their own
    // environments.
    files: ['src/main.ts', 'scripts/**', 'test/**', 'config/**', 'bench/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    // The pages' own scripts run in the browser as classic scripts, not in Node.
    files: ['src/web/static/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser } },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  prettier,
);
