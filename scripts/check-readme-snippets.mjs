#!/usr/bin/env node
// Typechecks the ```ts snippets of every package README against the built packages, so a renamed
// method or option cannot leave a README stale. A snippet may use names it does not declare (the
// `socket`, `user` or `t` of its surroundings): "cannot find name" errors are ignored, every other
// error fails the check. Each snippet sees its package's and @onionturn/protocol's exports.
// Run by `npm run typecheck` (after the build: it reads the packages' .d.ts files).
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { root } from './prepare.mjs';

/** "Cannot find name", "did you mean", "cannot find namespace": the snippet's surroundings. */
const IGNORED = new Set([2304, 2552, 2503, 2582, 2581, 2580, 18004]);

const dir = mkdtempSync(join(root, 'packages', '.readme-check-'));
let failed = 0;
try {
  const files = [];
  for (const pkg of readdirSync(join(root, 'packages'))) {
    const readme = join(root, 'packages', pkg, 'README.md');
    if (!existsSync(readme)) continue;
    const text = readFileSync(readme, 'utf8');
    const blocks = [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
    /** The import lines a snippet gets: each name once, its own imports left to it. */
    const headerFor = async (code) => {
      const lines = [];
      const seen = new Set(
        [...code.matchAll(/import\s*\{([^}]*)\}/g)].flatMap((m) =>
          m[1].split(',').map((n) =>
            n
              .trim()
              .split(/\s+as\s+/)
              .pop(),
          ),
        ),
      );
      for (const from of [`@onionturn/${pkg}`, '@onionturn/protocol']) {
        let names = [];
        try {
          names = Object.keys(await import(from)).filter((n) => n !== 'default' && !seen.has(n));
        } catch {
          // a package without a runtime entry (none today)
        }
        names.forEach((n) => seen.add(n));
        if (names.length > 0) lines.push(`import { ${names.join(', ')} } from '${from}';`);
      }
      return lines;
    };
    const headers = await Promise.all(blocks.map(headerFor));
    blocks.forEach((code, i) => {
      const file = join(dir, `${pkg}-${i + 1}.ts`);
      // A snippet's own imports go to the top (blanked in place, so its line numbers stay).
      const own = code.split('\n').filter((l) => /^import\s/.test(l));
      const body = code
        .split('\n')
        .map((l) => (/^import\s/.test(l) ? '' : l))
        .join('\n');
      const lines = headers[i];
      writeFileSync(file, `${lines.join('\n')}\n${own.join('\n')}\nexport {};\nasync function snippet(): Promise<void> {\n${body}\n}\nvoid snippet;\n`);
      files.push({ file, pkg, index: i + 1, headerLines: lines.length + own.length + 3 });
    });
  }
  const program = ts.createProgram(
    files.map((f) => f.file),
    {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      skipLibCheck: true,
      types: ['node'],
    },
  );
  for (const d of ts.getPreEmitDiagnostics(program)) {
    if (IGNORED.has(d.code)) continue;
    const f = files.find((x) => x.file === d.file?.fileName);
    const where = f ? `packages/${f.pkg}/README.md snippet ${f.index}` : (d.file?.fileName ?? '?');
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line - (f?.headerLines ?? 0) : 0;
    console.error(`readme-snippets: ${where}, line ${line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
    failed++;
  }
  console.log(`readme-snippets: ${files.length} snippets checked, ${failed} errors`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed > 0 ? 1 : 0);
