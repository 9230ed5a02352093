// JSON logs (winston) on stderr, so stdout stays for a command's data (credentials, JSON).
// Callers must never pass secrets, passwords, usernames or client addresses as fields.
import winston from 'winston';

export type Logger = winston.Logger;

export function createLogger(level = 'info'): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console({ stderrLevels: Object.keys(winston.config.npm.levels) })],
  });
}
