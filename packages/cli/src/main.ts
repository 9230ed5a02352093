// Placeholder entry until the credentials/server/client commands land (issues 3-5).
export async function main(argv: readonly string[]): Promise<number> {
  if (argv.length === 0 || argv.includes('--help')) {
    console.log('onionturn: TURN-over-Tor bridge. Commands: server, client, credentials (not built yet).');
    return 0;
  }
  console.error(`onionturn: '${argv[0]}' is not built yet`);
  return 2;
}
