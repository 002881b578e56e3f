// Flat config: typescript-eslint's recommended rules, plus the import boundaries from STYLE.md.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import globals from 'globals'

const boundary = (from, banned) => ({
  files: [`${from}/**/*.ts`],
  rules: {
    'no-restricted-imports': ['error', {
      patterns: banned.map((group) => ({ group, message: `${from}/ must not import ${group.join(', ')} (dependencies flow shared <- mesh <- gateway, firmware-sim)` }))
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
  boundary('shared', [['**/mesh/**', '**/gateway/**', '**/firmware-sim/**', '**/test/**', '**/bin/**']]),
  boundary('mesh', [['**/gateway/**', '**/firmware-sim/**', '**/test/**', '**/bin/**']]),
  boundary('gateway', [['**/firmware-sim/**', '**/test/**', '**/bin/**']]),
  boundary('firmware-sim', [['**/gateway/*/**', '**/test/**', '**/bin/**']])
)
