# Cython declarations augmenting hotpath/mapping_py.py, compiled as hotpath.mapping_c.
# Rules: types only, no logic; every name here must exist in mapping_py.py with the same
# signature. The render nodes become extension types with typed attributes, so a render
# is a chain of C-level virtual calls, dict lookups and list indexing.

cimport cython


cdef class Node:
    cpdef object render(self, dict ctx)


cdef class Const(Node):
    cdef readonly object value


cdef class Ref(Node):
    cdef readonly str root
    cdef readonly tuple steps


cdef class JsonPathRef(Node):
    cdef readonly object query


cdef class DynamicRef(Node):
    cdef readonly tuple parts
    cdef readonly dict cache


cdef class Interp(Node):
    cdef readonly tuple parts


cdef class DictNode(Node):
    cdef readonly tuple keys
    cdef readonly tuple values

    @cython.locals(i=Py_ssize_t, node=Node, out=dict)
    cpdef object render(self, dict ctx)


cdef class ListNode(Node):
    cdef readonly tuple items


cdef class Template:
    cdef readonly Node node
    cdef readonly frozenset roots
    cdef readonly bint dynamic_roots
    cdef readonly bint is_constant
    cpdef object render(self, dict ctx)


@cython.locals(j=Py_ssize_t, size=Py_ssize_t, index=Py_ssize_t)
cdef object _walk(object value, tuple steps)


@cython.locals(part=Node, pieces=list)
cdef str _concat(tuple parts, dict ctx)


cpdef str java_string(object value)
