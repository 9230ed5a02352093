export const PACKAGE = '@onionturn/client';
