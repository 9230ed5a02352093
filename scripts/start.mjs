#!/usr/bin/env node
// `npm start`: the main job. Installs and builds what is missing, then runs the onionturn CLI.
// Until the end-to-end demo lands it shows the CLI and what each subcommand does.
import { join } from 'node:path';
import { prepare, root, run } from './prepare.mjs';

prepare('start');
const cli = join(root, 'packages', 'cli', 'bin', 'onionturn.js');
run(process.execPath, [cli, ...(process.argv.length > 2 ? process.argv.slice(2) : ['--help'])], 'start');
