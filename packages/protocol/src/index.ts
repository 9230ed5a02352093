export const PACKAGE = '@onionturn/protocol';
