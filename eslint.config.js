// Flat config: typescript-eslint's recommended rules, plus the import boundaries from STYLE.md.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import globals from 'globals'
import { builtinModules } from 'node:module'
import importX from 'eslint-plugin-import-x'

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

// A part is used only through its public faces (package.json "exports"): index.ts, plus
// shared/node.ts (Node-only I/O) and mesh/testing.ts (test doubles: the fleet simulator and the lab use them).
const FACES = { shared: ['index', 'node'], mesh: ['index', 'testing'], gateway: ['index'], 'firmware-sim': ['index'], lab: ['index'] }
const publicFaces = (...parts) => parts.flatMap((part) => [`**/${part}/**`, ...FACES[part].map((face) => `!**/${part}/${face}.js`)])

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/artifacts/**', 'docs/api/**'] },
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
  boundary('mesh', [['**/gateway/**', '**/firmware-sim/**', '**/lab/**', '**/test/**', '**/bin/**'], publicFaces('shared')]),
  boundary('gateway', [['**/firmware-sim/**', '**/lab/**', '**/test/**', '**/bin/**'], publicFaces('shared', 'mesh')]),
  boundary('firmware-sim', [['**/lab/**', '**/test/**', '**/bin/**'], publicFaces('shared', 'mesh', 'gateway')]),
  // The experiment lab measures every part, so it may import each of them, but only through its public faces.
  boundary('lab', [['**/test/**', '**/bin/**'], publicFaces('shared', 'mesh', 'gateway', 'firmware-sim')],
    'the lab depends on every other part through its index.ts, and on nothing in test/ or bin/'),
  boundary('bin', [['**/test/**'], publicFaces('shared', 'mesh', 'gateway', 'firmware-sim', 'lab')],
    'the CLI uses each part through its public faces, as a user of the package would'),
  {
    // Guard rails (issue 9): no import cycles (gateway.ts <-> metrics.ts was one), and a warning when a
    // file grows past 400 lines (split it by concern, as mesh/routing/handlers/ is).
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    // Our sources import './x.js' for x.ts (NodeNext): resolve such imports to the TypeScript file.
    settings: {
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [importX.createNodeResolver({ extensions: ['.ts', '.js'], extensionAlias: { '.js': ['.ts', '.js'] } })]
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'max-lines': ['warn', { max: 400, skipBlankLines: true, skipComments: true }]
    }
  }
)
