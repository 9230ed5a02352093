export const PACKAGE = '@onionturn/credentials';
