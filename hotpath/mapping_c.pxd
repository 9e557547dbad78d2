# Cython declarations augmenting hotpath/mapping_py.py, compiled as hotpath.mapping_c.
# Rules: types only, no logic; every name here must exist in mapping_py.py with the same
# signature. The render nodes become extension types with typed attributes, so a render
# is a chain of C-level virtual calls over typed `next` links, dict lookups and list
# indexing, with no Python attribute lookups and no per-item type checks.

cimport cython


cdef class Node:
    cdef public Node next
    cdef public object key
    cdef object render(self, dict ctx)


@cython.final
cdef class Const(Node):
    cdef readonly object value


@cython.final
cdef class Ref(Node):
    cdef readonly str root
    cdef readonly tuple steps


@cython.final
cdef class JsonPathRef(Node):
    cdef readonly object query


cdef class DynamicRef(Node):
    cdef readonly Node first
    cdef readonly dict cache

    @cython.locals(node=Node)
    cdef object render(self, dict ctx)


@cython.final
cdef class Interp(Node):
    cdef readonly Node first


cdef class DictNode(Node):
    cdef readonly dict base
    cdef readonly Node first

    @cython.locals(node=Node, out=dict)
    cdef object render(self, dict ctx)


cdef class ListNode(Node):
    cdef readonly list base
    cdef readonly Node first

    @cython.locals(node=Node, out=list, index=Py_ssize_t)
    cdef object render(self, dict ctx)


@cython.final
cdef class Template:
    cdef readonly Node node
    cdef readonly frozenset roots
    cdef readonly bint dynamic_roots
    cdef readonly bint is_constant
    cdef readonly dict root_fields
    cdef readonly dict root_io
    cdef readonly tuple ctx_roots

    cpdef object render(self, object ctx)


@cython.locals(size=Py_ssize_t, index=Py_ssize_t, mapping=dict, items=list)
cdef object _walk(object value, tuple steps)


@cython.locals(text=str)
cdef str _concat(Node part, dict ctx)


cpdef str java_string(object value)
