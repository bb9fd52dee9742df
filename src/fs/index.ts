export { FileSystemObjectStore, type FileSystemObjectStoreOptions } from './file-system-object-store.js';
