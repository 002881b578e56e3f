// Flat config: typescript-eslint's recommended rules, plus the import boundaries from STYLE.md.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import globals from 'globals'
import { builtinModules } from 'node:module'

const boundary = (from, banned, why = 'dependencies flow shared <- mesh <- gateway, firmware-sim <- lab') => ({
  files: [`${from}/**/*.ts`],
  rules: {
    'no-restricted-imports': ['error', {
      patterns: banned.map((group) => ({ group, message: `${from}/ must not import ${group.join(', ')} (${why})` }))
    }]
  }
})

// shared/ runs in browsers too (issue 9, "one house"): no Node built-in modules, no Node globals,
// except in the Node-only entry point shared/node.ts and the files behind it (shared/node/).
// no-restricted-syntax rather than no-restricted-imports: the latter would replace the shared/
// boundary's patterns above for the same files.
// "\\x2f" is "/": esquery ends a regex at the first slash, escaped or not.
const builtins = builtinModules.filter((m) => !m.startsWith('_') && !m.includes('/'))
const nodeModule = `/^(node:|(${builtins.join('|')})(\\x2f|$))/`
const nodeOnly = 'shared/ must load in a browser (test/shared/browser.test.ts): Node-only code goes in shared/node.ts (iotmesh/shared/node)'
const pureShared = {
  files: ['shared/**/*.ts'],
  ignores: ['shared/node.ts', 'shared/node/**'],
  rules: {
    'no-restricted-syntax': ['error',
      ...['ImportDeclaration', 'ExportNamedDeclaration', 'ExportAllDeclaration', 'ImportExpression'].map((node) => ({
        selector: `${node}[source.value=${nodeModule}]`, message: `a Node built-in module: ${nodeOnly}`
      })),
      { selector: `TSImportType[argument.literal.value=${nodeModule}]`, message: `a Node built-in module: ${nodeOnly}` }
    ],
    'no-restricted-globals': ['error', ...['Buffer', 'process', 'global', 'require'].map((name) => ({ name, message: `a Node global: ${nodeOnly}` }))],
    'no-restricted-properties': ['error', ...['Buffer', 'process', 'global', 'require'].map((property) => ({
      object: 'globalThis', property, message: `a Node global: ${nodeOnly}`
    }))]
  }
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { languageOptions: { globals: { ...globals.node } } },
  pureShared,
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
