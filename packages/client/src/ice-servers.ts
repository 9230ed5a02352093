// What a user pastes into an app: RTCConfiguration.iceServers for the local listener.
import { formatHostPort } from './endpoints.js';

export interface IceServer {
  readonly urls: readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

/** With local credentials they are filled in; otherwise placeholders for REST credentials. */
export function iceServers(host: string, port: number, local?: { username: string; password: string }): IceServer[] {
  const hp = formatHostPort(host, port);
  return [
    {
      urls: [`turn:${hp}?transport=udp`, `turn:${hp}?transport=tcp`],
      username: local?.username ?? '<username from onionturn credentials>',
      credential: local?.password ?? '<password from onionturn credentials>',
    },
  ];
}
