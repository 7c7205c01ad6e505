'use strict';
// ESLint 9 flat config: the recommended rules over CommonJS sources that
// run on Node.

const js = require('@eslint/js');
const globals = require('globals');

module.exports = [
  {
    ignores: [
      'node_modules/',
      'target/',
      'npm/',
      'binding.js',
      'binding.d.ts',
      'fuzz/',
      'bench/target/',
      'bench/.work/',
      'bench/loadgen/target/',
      'bench/ref/node_modules/',
      // Third-party bundles served by the examples, should any be vendored.
      'examples/**/static/',
      'examples/**/*.min.js',
    ],
  },
  js.configs.recommended,
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'commonjs',
      globals: {
        ...globals.node,
      },
    },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: {
        ...globals.node,
      },
    },
  },
];
