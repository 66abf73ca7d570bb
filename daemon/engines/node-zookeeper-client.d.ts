/**
 * The part of node-zookeeper-client (1.1.x, plain JavaScript without types) that the
 * ZooKeeper engine uses, typed here from the library's source (index.js, lib/*.js).
 */
declare module 'node-zookeeper-client' {
  import { EventEmitter } from 'node:events';

  export interface Stat {
    czxid: Buffer;
    mzxid: Buffer;
    ctime: Buffer;
    mtime: Buffer;
    version: number;
    cversion: number;
    aversion: number;
    ephemeralOwner: Buffer;
    dataLength: number;
    numChildren: number;
    pzxid: Buffer;
  }

  export class Exception extends Error {
    static readonly OK: number;
    static readonly SYSTEM_ERROR: number;
    static readonly CONNECTION_LOSS: number;
    static readonly OPERATION_TIMEOUT: number;
    static readonly NO_NODE: number;
    static readonly NO_AUTH: number;
    static readonly BAD_VERSION: number;
    static readonly NODE_EXISTS: number;
    static readonly NOT_EMPTY: number;
    static readonly SESSION_EXPIRED: number;
    static readonly AUTH_FAILED: number;
    getCode(): number;
    getName(): string;
    getPath(): string | undefined;
  }

  export class State {
    static readonly DISCONNECTED: State;
    static readonly SYNC_CONNECTED: State;
    static readonly AUTH_FAILED: State;
    static readonly CONNECTED_READ_ONLY: State;
    static readonly EXPIRED: State;
    name: string;
    code: number;
  }

  export class Event {
    static readonly NODE_CREATED: number;
    static readonly NODE_DELETED: number;
    static readonly NODE_DATA_CHANGED: number;
    static readonly NODE_CHILDREN_CHANGED: number;
    type: number;
    name: string;
    path: string;
    getType(): number;
    getName(): string;
    getPath(): string;
  }

  export class Id {
    constructor(scheme: string, id: string);
  }
  export class ACL {
    constructor(permission: number, id: Id);
    static readonly OPEN_ACL_UNSAFE: ACL[];
    static readonly CREATOR_ALL_ACL: ACL[];
    static readonly READ_ACL_UNSAFE: ACL[];
  }
  export const Permission: { READ: number; WRITE: number; CREATE: number; DELETE: number; ADMIN: number; ALL: number };

  export const CreateMode: { PERSISTENT: number; PERSISTENT_SEQUENTIAL: number; EPHEMERAL: number; EPHEMERAL_SEQUENTIAL: number };

  export type Watcher = (event: Event) => void;

  export interface TransactionResult {
    type: number;
    path?: string;
    stat?: Stat;
    err?: number;
  }

  export class Transaction {
    create(path: string, data?: Buffer, acls?: ACL[], mode?: number): this;
    check(path: string, version?: number): this;
    setData(path: string, data: Buffer | null, version?: number): this;
    remove(path: string, version?: number): this;
    commit(cb: (err: Exception | Error | null, results: TransactionResult[]) => void): void;
  }

  export interface ClientOptions {
    sessionTimeout?: number;
    spinDelay?: number;
    retries?: number;
  }

  export class Client extends EventEmitter {
    connect(): void;
    close(): void;
    getState(): State;
    getSessionId(): Buffer;
    getSessionTimeout(): number;
    addAuthInfo(scheme: string, auth: Buffer): void;
    create(path: string, data: Buffer | null, acls: ACL[], mode: number, cb: (err: Exception | Error | null, path: string) => void): void;
    remove(path: string, version: number, cb: (err: Exception | Error | null) => void): void;
    setData(path: string, data: Buffer | null, version: number, cb: (err: Exception | Error | null, stat: Stat) => void): void;
    getData(path: string, watcher: Watcher | undefined, cb: (err: Exception | Error | null, data: Buffer, stat: Stat) => void): void;
    exists(path: string, watcher: Watcher | undefined, cb: (err: Exception | Error | null, stat: Stat | null) => void): void;
    getChildren(path: string, watcher: Watcher | undefined, cb: (err: Exception | Error | null, children: string[], stat: Stat) => void): void;
    mkdirp(path: string, data: Buffer | null, acls: ACL[], mode: number, cb: (err: Exception | Error | null, path: string) => void): void;
    transaction(): Transaction;
    /** Internal: the connection manager (its socket is replaced when a probe finds the connection dead). */
    connectionManager: { socket?: { destroy(): void }; /** The zxid of the newest answer's header (8 bytes, big-endian). */ zxid?: Buffer };
  }

  export function createClient(connectionString: string, options?: ClientOptions): Client;

  const zk: {
    createClient: typeof createClient;
    ACL: typeof ACL;
    Id: typeof Id;
    Permission: typeof Permission;
    CreateMode: typeof CreateMode;
    State: typeof State;
    Event: typeof Event;
    Exception: typeof Exception;
  };
  export default zk;
}
