#!/usr/bin/env node
// Fails when a package ruled out at runtime by DESIGN.md (published advisories) is in the
// production dependency tree. devDependencies (stun, node-turn for cross-checks) are fine.
import { execFileSync } from 'node:child_process';

const BANNED = ['stun', 'node-turn', 'ip', 'parse-url', 'log4js'];
const tree = JSON.parse(execFileSync('npm', ['ls', '--omit=dev', '--all', '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
const found = [];
(function walk(node, path) {
  for (const [name, child] of Object.entries(node.dependencies ?? {})) {
    if (BANNED.includes(name)) found.push(`${[...path, name].join(' > ')}@${child.version}`);
    walk(child, [...path, name]);
  }
})(tree, []);
if (found.length) {
  console.error(`check-deps: banned runtime dependencies: ${found.join(', ')}`);
  process.exit(1);
}
console.log(`check-deps: no ${BANNED.join(', ')} in the production tree`);
