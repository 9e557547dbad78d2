"""The JavaScript installed once in every QuickJS context before any user script runs.

Rules:
- Evaluating `PRELUDE` returns the one function Python calls per evaluation:
  `run(source, bindingsJson, javaMaps) -> resultJson | undefined`, prefixed with "!" when
  the global object could not be restored (Python then replaces the context; after a
  failed evaluation Python asks with `run(null)`). It is not a global: user scripts
  cannot see, call or replace it.
- A user script runs through a *direct* `eval` inside a function whose scope chain holds
  only `$` and `__podium_*` names, so the script's completion value is the result (the
  SDK's `if (...) { true; } else { false; }`), while its `var`/`function` declarations
  stay local to that one evaluation. The function is sloppy-mode, like Nashorn scripts.
  Afterwards, globals a script created by assigning an undeclared name are deleted and
  built-in globals it replaced (`JSON = null`) are put back. Changes *inside* built-ins
  (`Array.prototype.x = ...`) are not undone: checking them costs more than a whole
  evaluation.
- Java-isms that Nashorn/GraalJS scripts call on bound Java lists and maps work on the bound
  JSON: arrays get `get/size/isEmpty/contains/add` (on Array.prototype), objects parsed from
  the bindings get `get/getOrDefault/containsKey/size/isEmpty/keySet/values` (on a private
  prototype, *not* Object.prototype: an inherited `get` would make every object literal
  look like an accessor descriptor to Object.defineProperty; the walk that sets that
  prototype runs only when `javaMaps` is true, see js.py), strings get
  `equals/equalsIgnoreCase/contains/isEmpty`. All are non-enumerable (JSON output and
  for-in are unaffected) and writable (a script may still assign `o.size = 3`).
- `InternalError` is removed from the global scope so that a script cannot forge the
  engine's "InternalError: interrupted" timeout message.
"""

from __future__ import annotations

PRELUDE = r"""
(function (globalObject) {
  var parse = JSON.parse;
  var stringify = JSON.stringify;
  var ownKeys = Reflect.ownKeys;
  var defineProperty = Object.defineProperty;
  var setPrototypeOf = Object.setPrototypeOf;
  var objectKeys = Object.keys;
  var hasOwn = Object.prototype.hasOwnProperty;
  var isArray = Array.isArray;

  function hide(target, name, fn) {
    defineProperty(target, name,
                   {value: fn, writable: true, enumerable: false, configurable: true});
  }

  // Java's equals() on JSON values: structural for arrays and maps.
  function same(a, b) {
    if (a === b) return true;
    if (a !== a && b !== b) return true;
    if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
    if (isArray(a) !== isArray(b)) return false;
    var i;
    if (isArray(a)) {
      if (a.length !== b.length) return false;
      for (i = 0; i < a.length; i++) if (!same(a[i], b[i])) return false;
      return true;
    }
    var ka = objectKeys(a);
    if (ka.length !== objectKeys(b).length) return false;
    for (i = 0; i < ka.length; i++) {
      if (!hasOwn.call(b, ka[i]) || !same(a[ka[i]], b[ka[i]])) return false;
    }
    return true;
  }

  // java.util.List
  hide(Array.prototype, 'get', function (index) {
    var i = +index;
    if (!(i >= 0 && i < this.length) || i !== Math.floor(i)) {
      throw new RangeError('Index ' + index + ' out of bounds for length ' + this.length);
    }
    return this[i];
  });
  hide(Array.prototype, 'size', function () { return this.length; });
  hide(Array.prototype, 'isEmpty', function () { return this.length === 0; });
  hide(Array.prototype, 'contains', function (value) {
    for (var i = 0; i < this.length; i++) if (same(this[i], value)) return true;
    return false;
  });
  hide(Array.prototype, 'add', function (value) { this.push(value); return true; });

  // java.util.Map, only for objects that came from the bindings.
  var mapPrototype = Object.create(Object.prototype);
  hide(mapPrototype, 'get', function (key) { return hasOwn.call(this, key) ? this[key] : null; });
  hide(mapPrototype, 'getOrDefault', function (key, fallback) {
    return hasOwn.call(this, key) ? this[key] : fallback;
  });
  hide(mapPrototype, 'containsKey', function (key) { return hasOwn.call(this, key); });
  hide(mapPrototype, 'size', function () { return objectKeys(this).length; });
  hide(mapPrototype, 'isEmpty', function () { return objectKeys(this).length === 0; });
  hide(mapPrototype, 'keySet', function () { return objectKeys(this); });
  hide(mapPrototype, 'values', function () { return Object.values(this); });

  // java.lang.String
  hide(String.prototype, 'equals', function (other) { return String(this) === other; });
  hide(String.prototype, 'equalsIgnoreCase', function (other) {
    return typeof other === 'string' && String(this).toLowerCase() === other.toLowerCase();
  });
  hide(String.prototype, 'contains', function (part) { return String(this).indexOf(part) >= 0; });
  hide(String.prototype, 'isEmpty', function () { return this.length === 0; });

  // GraalJS hands a BigInt back as a BigInteger; JSON.stringify would throw on it.
  if (typeof BigInt === 'function') {
    hide(BigInt.prototype, 'toJSON', function () { return Number(this); });
  }

  delete globalObject.InternalError;

  // Walks the parsed bindings giving every (non-array) object the Java map methods.
  function adoptMaps(value) {
    var i, item;
    if (isArray(value)) {
      for (i = 0; i < value.length; i++) {
        item = value[i];
        if (item !== null && typeof item === 'object') adoptMaps(item);
      }
      return;
    }
    setPrototypeOf(value, mapPrototype);
    var names = objectKeys(value);
    for (i = 0; i < names.length; i++) {
      item = value[names[i]];
      if (item !== null && typeof item === 'object') adoptMaps(item);
    }
  }

  // Built by the Function constructor so that its scope chain skips this closure: the
  // user's script sees `$`, `__podium_source` and the globals, nothing else.
  var evaluate = new Function('__podium_source', '$', 'return eval(__podium_source);');

  // The global object as the prelude leaves it: restored after every evaluation.
  var globalNames = ownKeys(globalObject);
  var globalDescriptors = [];
  var globalValues = [];
  for (var g = 0; g < globalNames.length; g++) {
    globalDescriptors.push(Object.getOwnPropertyDescriptor(globalObject, globalNames[g]));
    globalValues.push(globalObject[globalNames[g]]);
  }
  var dirty = false;

  // Deletes globals a script added by assigning an undeclared name (those are enumerable;
  // the built-ins are not) and puts back built-ins it replaced or deleted. Returns false
  // when that failed (a non-configurable addition, a throwing getter): then Python
  // replaces the whole context.
  function restoreGlobals() {
    try {
      var added = objectKeys(globalObject);
      for (var i = 0; i < added.length; i++) {
        if (!delete globalObject[added[i]]) return false;
      }
      for (var j = 0; j < globalNames.length; j++) {
        if (globalObject[globalNames[j]] !== globalValues[j]) {
          defineProperty(globalObject, globalNames[j], globalDescriptors[j]);
        }
      }
      return true;
    } catch (e) {
      return false;
    }
  }

  // run(null) answers whether the last evaluation left the context dirty: "!" or "".
  // Otherwise the result JSON (or undefined), prefixed with "!" when dirty.
  return function run(source, bindingsJson, javaMaps) {
    if (source === null) return dirty ? '!' : '';
    var bound = parse(bindingsJson);
    if (javaMaps && bound !== null && typeof bound === 'object') adoptMaps(bound);
    var out, failure, failed = false;
    try {
      out = stringify(evaluate(source, bound));
    } catch (e) {
      failed = true;
      failure = e;
    }
    dirty = !restoreGlobals();
    if (failed) throw failure;
    if (dirty) return out === undefined ? '!' : '!' + out;
    return out;
  };
})(globalThis)
"""
