// libp2p 3 calls Promise.withResolvers (Node 22+). On Node 20 every inbound connection
// dies in the encrypter without it. Import this module before anything from libp2p.
// It also brings the fix of a dependency's flaw that ends the process (xsalsa20-memory.ts),
// and one that halves the frames a stream of small messages costs (yamux-window.ts).
import './xsalsa20-memory.js';
import './yamux-window.js';

type Resolvers<T> = {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
};

const P = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> };
if (typeof P.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    enumerable: false,
    value: function withResolvers<T>(this: PromiseConstructor): Resolvers<T> {
      let resolve!: Resolvers<T>['resolve'];
      let reject!: Resolvers<T>['reject'];
      const promise = new this<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}
