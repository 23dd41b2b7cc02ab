/**
 * Loads a TypeScript file of this repository (the test support fake upstream) into a plain node process by
 * compiling it in memory with @swc/core (a devDependency): for scripts and benchmarks that run without a build.
 */
'use strict';

const Module = require('node:module');
const path = require('node:path');
const { transformFileSync } = require('@swc/core');

function loadTs(file) {
  const { code } = transformFileSync(file, {
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'commonjs' },
    sourceMaps: false,
    swcrc: false,
  });
  const mod = new Module(file, module);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(path.dirname(file));
  mod._compile(code, file);
  return mod.exports;
}

module.exports = { loadTs };
