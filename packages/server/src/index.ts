export const PACKAGE = '@onionturn/server';
