// Flat config: typescript-eslint's recommended rules, plus the import boundaries from STYLE.md.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import globals from 'globals'

const boundary = (from, banned, why = 'dependencies flow shared <- mesh <- gateway, firmware-sim <- lab') => ({
  files: [`${from}/**/*.ts`],
  rules: {
    'no-restricted-imports': ['error', {
      patterns: banned.map((group) => ({ group, message: `${from}/ must not import ${group.join(', ')} (${why})` }))
    }]
  }
})

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { languageOptions: { globals: { ...globals.node } } },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off'
    }
  },
  boundary('shared', [['**/mesh/**', '**/gateway/**', '**/firmware-sim/**', '**/lab/**', '**/test/**', '**/bin/**']]),
  boundary('mesh', [['**/gateway/**', '**/firmware-sim/**', '**/lab/**', '**/test/**', '**/bin/**']]),
  boundary('gateway', [['**/firmware-sim/**', '**/lab/**', '**/test/**', '**/bin/**']]),
  boundary('firmware-sim', [['**/gateway/*/**', '**/lab/**', '**/test/**', '**/bin/**']]),
  // The experiment lab measures every part, so it may import each of them, but only through its index.ts.
  boundary('lab', [
    ['**/test/**', '**/bin/**'],
    [
      '**/shared/**', '!**/shared/index.js', '**/mesh/**', '!**/mesh/index.js',
      '**/gateway/**', '!**/gateway/index.js', '**/firmware-sim/**', '!**/firmware-sim/index.js'
    ]
  ], 'the lab depends on every other part through its index.ts, and on nothing in test/ or bin/')
)
