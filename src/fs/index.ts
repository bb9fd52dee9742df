export { FileKvStore, type FileKvStoreOptions } from './file-kv-store.js';
export { FileSystemObjectStore, type FileSystemObjectStoreOptions } from './file-system-object-store.js';
