# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# cython: infer_types=True, cdivision=True
"""The compiled matching engine: the same ``Engine`` API and rules as ``engine/engine.py``.

``engine/engine.py`` is the reference implementation; this module must produce the identical
results, events and snapshots for every command stream (``tests/engine/test_differential.py``
checks that). Read the rules there; the code below follows the reference function by function.

What makes it fast:

- Book internals are extension types with C fields; each book side keeps its price keys in a
  sorted C array (descending, so the best level is the last element and inserts near the touch
  move little memory) with the level objects alongside.
- Command fields are read straight from the frozen slotted dataclasses' slots (offsets taken from
  their member descriptors at import, exact types checked first).
- Events go into a C buffer of fixed-size records; ``process_many`` returns a ``ResultBatch``
  over that buffer, and event objects are built only when a command's ``Result`` is read
  (directly into the dataclasses' slots, as ``engine._fast`` does in Python).
"""

cimport cython
from cpython.ref cimport PyObject, Py_INCREF, Py_XDECREF
from libc.stdint cimport int16_t, int64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memmove, memset
from libc.stdlib cimport getenv
from libc.string cimport strcmp

import dataclasses
import heapq
from collections.abc import Sequence

from engine.codes import CancelReason, ResultCode
from engine.errors import InvariantError, SnapshotError, UnknownInstrumentError
from engine.instrument import InstrumentSpec, InstrumentStatus
from engine.messages import (
    AddInstrument,
    AdvanceTime,
    AmendOrder,
    BookDelta,
    CancelOrder,
    Cross,
    Fill,
    IndicativeUncross,
    InstrumentAdded,
    InstrumentStatusChanged,
    L2Snapshot,
    MassCancel,
    NewOrder,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderType,
    OrderView,
    Result,
    SetInstrumentStatus,
    Side,
    StpMode,
    TimeInForce,
    TradeOrigin,
    Uncross,
)
from engine.messages import Level as LevelView
from engine.limits import INT64_MAX, QTY_LIMIT, SPEC_LIMIT

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef *d_member
    object PyType_GenericAlloc(type t, Py_ssize_t n)
    bint PyLong_CheckExact(object o)
    long long PyLong_AsLongLongAndOverflow(object o, int *overflow) except? -1

SNAPSHOT_FORMAT = 1

DEF K_ACCEPTED = 1
DEF K_REJECTED = 2
DEF K_FILL = 3
DEF K_AMENDED = 4
DEF K_CANCELLED = 5
DEF K_EXPIRED = 6
DEF K_DELTA = 7
DEF K_OBJECT = 8

DEF BUY = 1
DEF SELL = 2
DEF LIMIT = 1
DEF MARKET = 2
DEF GTC = 1
DEF GTD = 2
DEF IOC = 3
DEF FOK = 4
DEF CANCEL_NEWEST = 1
DEF CANCEL_OLDEST = 2
DEF CANCEL_BOTH = 3
DEF DECREMENT = 4
DEF PRE_OPEN = 1
DEF OPEN = 2
DEF HALTED = 3
DEF CLOSED = 4
DEF CALL = 5

DEF O_CONTINUOUS = 1
DEF O_AUCTION = 2
DEF O_RFQ = 3
DEF O_BLOCK = 4

DEF R_USER = 1
DEF R_IOC = 3
DEF R_STP = 4
DEF R_CLOSED = 5

DEF C_OK = 0
DEF C_UNKNOWN_INSTRUMENT = 101
DEF C_INSTRUMENT_EXISTS = 102
DEF C_INSTRUMENT_NOT_OPEN = 103
DEF C_INSTRUMENT_HALTED = 104
DEF C_INSTRUMENT_CLOSED = 105
DEF C_INVALID_STATUS_TRANSITION = 106
DEF C_INVALID_INSTRUMENT_SPEC = 107
DEF C_INVALID_QUANTITY = 201
DEF C_QUANTITY_BELOW_MIN = 202
DEF C_QUANTITY_ABOVE_MAX = 203
DEF C_INVALID_PRICE = 204
DEF C_PRICE_OUTSIDE_BAND = 205
DEF C_MISSING_PRICE = 206
DEF C_MISSING_EXPIRY = 207
DEF C_EXPIRY_IN_PAST = 208
DEF C_INVALID_ORDER_FLAGS = 209
DEF C_POST_ONLY_WOULD_CROSS = 301
DEF C_FOK_NOT_FILLABLE = 302
DEF C_NO_LIQUIDITY = 303
DEF C_UNKNOWN_ORDER = 401
DEF C_AMEND_NO_CHANGE = 402
DEF C_AMEND_QTY_TOO_LOW = 403
DEF C_INVALID_TIME = 404
DEF C_NOT_ALLOWED_IN_CALL = 501
DEF C_SELF_CROSS = 502
DEF C_INVALID_TRADE_ORIGIN = 503
DEF C_NOT_IN_CALL = 504
DEF C_BOOK_CROSSED = 505

DEF I64MAX = 9223372036854775807


def use_compiled() -> bool:
    """False when ``VENUE_ENGINE=python`` asks for the reference engine (read with C ``getenv``)."""
    cdef const char* value = getenv(b"VENUE_ENGINE")
    return value == NULL or strcmp(value, b"python") != 0


# ==================================================================== slot access

cdef Py_ssize_t _offset(cls, str name) except -1:
    descr = cls.__dict__[name]
    if type(descr).__name__ != "member_descriptor":
        raise TypeError(f"{cls.__name__}.{name} is not a slot")
    return (<PyMemberDescrObject*>descr).d_member.offset


cdef inline object _get(object o, Py_ssize_t off):
    cdef PyObject* p = (<PyObject**>((<char*><PyObject*>o) + off))[0]
    if p == NULL:
        raise AttributeError("unset field")
    return <object>p


cdef inline void _put(object o, Py_ssize_t off, object v):
    Py_INCREF(v)
    (<PyObject**>((<char*><PyObject*>o) + off))[0] = <PyObject*>v


cdef class _Maker:
    """Builds a frozen slotted dataclass by writing its slots (fields in declaration order)."""

    cdef type cls
    cdef Py_ssize_t off[16]
    cdef int n

    def __init__(self, type cls):
        names = [f.name for f in dataclasses.fields(cls)]
        if len(names) > 16:
            raise TypeError(cls.__name__)
        self.cls = cls
        self.n = len(names)
        for i, name in enumerate(names):
            self.off[i] = _offset(cls, name)

    cdef inline object new(self):
        return PyType_GenericAlloc(self.cls, 0)


# command field offsets
cdef Py_ssize_t N_TS = _offset(NewOrder, "ts")
cdef Py_ssize_t N_PART = _offset(NewOrder, "participant")
cdef Py_ssize_t N_SYM = _offset(NewOrder, "symbol")
cdef Py_ssize_t N_SIDE = _offset(NewOrder, "side")
cdef Py_ssize_t N_QTY = _offset(NewOrder, "qty")
cdef Py_ssize_t N_PRICE = _offset(NewOrder, "price")
cdef Py_ssize_t N_TYPE = _offset(NewOrder, "order_type")
cdef Py_ssize_t N_TIF = _offset(NewOrder, "tif")
cdef Py_ssize_t N_EXP = _offset(NewOrder, "expire_ts")
cdef Py_ssize_t N_POST = _offset(NewOrder, "post_only")
cdef Py_ssize_t N_STP = _offset(NewOrder, "stp")
cdef Py_ssize_t N_COID = _offset(NewOrder, "client_order_id")
cdef Py_ssize_t N_SESSION = _offset(NewOrder, "session")
cdef Py_ssize_t A_TS = _offset(AmendOrder, "ts")
cdef Py_ssize_t A_PART = _offset(AmendOrder, "participant")
cdef Py_ssize_t A_OID = _offset(AmendOrder, "order_id")
cdef Py_ssize_t A_PRICE = _offset(AmendOrder, "price")
cdef Py_ssize_t A_QTY = _offset(AmendOrder, "qty")
cdef Py_ssize_t C_TS = _offset(CancelOrder, "ts")
cdef Py_ssize_t C_PART = _offset(CancelOrder, "participant")
cdef Py_ssize_t C_OID = _offset(CancelOrder, "order_id")

cdef _Maker M_ACCEPTED = _Maker(OrderAccepted)
cdef _Maker M_REJECTED = _Maker(OrderRejected)
cdef _Maker M_FILL = _Maker(Fill)
cdef _Maker M_AMENDED = _Maker(OrderAmended)
cdef _Maker M_CANCELLED = _Maker(OrderCancelled)
cdef _Maker M_EXPIRED = _Maker(OrderExpired)
cdef _Maker M_DELTA = _Maker(BookDelta)
cdef _Maker M_RESULT = _Maker(Result)

cdef tuple SIDES = (None, Side.BUY, Side.SELL)
cdef tuple REASONS = (None,) + tuple(CancelReason(i) for i in range(1, len(CancelReason) + 1))
cdef tuple TIFS = (None,) + tuple(TimeInForce(i) for i in range(1, 5))
cdef tuple STPS = (None,) + tuple(StpMode(i) for i in range(1, 5))
cdef tuple STATUSES = (None,) + tuple(InstrumentStatus(i) for i in range(1, 6))
cdef tuple ORIGINS = (None,) + tuple(TradeOrigin(i) for i in range(1, 5))
cdef list CODES = [None] * 1000
for _c in ResultCode:
    CODES[int(_c)] = _c
cdef object _OK_CODE = ResultCode.OK
cdef object _NO_EVENTS = ()
cdef object _BUY_OBJ = Side.BUY
cdef object _SELL_OBJ = Side.SELL
cdef object _MARKET_OBJ = OrderType.MARKET
cdef object _LIMIT_OBJ = OrderType.LIMIT
cdef type _NewOrder = NewOrder
cdef type _AmendOrder = AmendOrder
cdef type _CancelOrder = CancelOrder
cdef object _TimeInForce = TimeInForce
cdef object _Side = Side
cdef object _OrderType = OrderType
cdef object _StpMode = StpMode

cdef set _TRANSITIONS = {
    (PRE_OPEN, OPEN), (OPEN, HALTED), (HALTED, OPEN), (PRE_OPEN, CLOSED), (OPEN, CLOSED), (HALTED, CLOSED),
    (OPEN, CALL), (PRE_OPEN, CALL), (HALTED, CALL), (CALL, HALTED), (CALL, CLOSED),
}


cdef inline int64_t _clamp(object v):
    """An exact int as int64; beyond the range, +-INT64_MAX (outside every valid spec bound)."""
    cdef int overflow = 0
    cdef long long x = PyLong_AsLongLongAndOverflow(v, &overflow)
    if overflow > 0:
        return I64MAX
    if overflow < 0:
        return -I64MAX
    return x


cdef inline bint _is_i64(object v):
    cdef int overflow = 0
    PyLong_AsLongLongAndOverflow(v, &overflow)
    return overflow == 0


# ==================================================================== event buffer

# 96 bytes. ``seq`` and ``ts`` are not stored: every event takes the next ``seq`` and carries its
# command's ``ts``, so they come from the command's record.
ctypedef struct Ev:
    int16_t kind
    int16_t side
    int16_t code
    int16_t flag
    int64_t md_seq
    int64_t i0
    int64_t i1
    int64_t i2
    int64_t i3
    int64_t i4
    int64_t i5
    int64_t i6
    PyObject* p0
    PyObject* p1
    PyObject* p2

ctypedef struct Rec:
    int code
    int has_oid
    int64_t oid
    PyObject* oid_obj  # a rejection's order id as given (owned), else NULL
    Py_ssize_t end  # events of this command: [previous end, end)
    int64_t seq0  # engine seq before the command: its events are seq0 + 1, seq0 + 2, ...
    int64_t ts  # the command's ts (as validated), the ts of its events


cdef class ResultBatch:
    """Results of ``Engine.process_many`` (compiled): compact records, ``Result`` objects on demand."""

    cdef Ev* ev
    cdef Py_ssize_t nev
    cdef Py_ssize_t cap_ev
    cdef Rec* rec
    cdef Py_ssize_t nrec
    cdef Py_ssize_t cap_rec

    def __cinit__(self):
        self.cap_ev = 64
        self.ev = <Ev*>malloc(self.cap_ev * sizeof(Ev))
        self.cap_rec = 16
        self.rec = <Rec*>malloc(self.cap_rec * sizeof(Rec))
        if self.ev == NULL or self.rec == NULL:
            raise MemoryError()
        self.nev = 0
        self.nrec = 0

    def __dealloc__(self):
        cdef Py_ssize_t i
        cdef Ev* e
        if self.ev != NULL:
            for i in range(self.nev):
                e = &self.ev[i]
                Py_XDECREF(e.p0)
                Py_XDECREF(e.p1)
                Py_XDECREF(e.p2)
            free(self.ev)
        if self.rec != NULL:
            for i in range(self.nrec):
                Py_XDECREF(self.rec[i].oid_obj)
            free(self.rec)

    cdef inline Ev* push(self) except NULL:
        cdef Ev* grown
        if self.nev == self.cap_ev:
            grown = <Ev*>realloc(self.ev, 2 * self.cap_ev * sizeof(Ev))
            if grown == NULL:
                raise MemoryError()
            self.ev = grown
            self.cap_ev *= 2
        cdef Ev* e = &self.ev[self.nev]
        self.nev += 1
        e.p0 = e.p1 = e.p2 = NULL
        return e

    cdef inline int finish(self, int code, int has_oid, int64_t oid, object oid_obj) except -1:
        cdef Rec* grown
        if self.nrec == self.cap_rec:
            grown = <Rec*>realloc(self.rec, 2 * self.cap_rec * sizeof(Rec))
            if grown == NULL:
                raise MemoryError()
            self.rec = grown
            self.cap_rec *= 2
        cdef Rec* r = &self.rec[self.nrec]
        self.nrec += 1
        r.code = code
        r.has_oid = has_oid
        r.oid = oid
        r.end = self.nev
        if oid_obj is None:
            r.oid_obj = NULL
        else:
            Py_INCREF(oid_obj)
            r.oid_obj = <PyObject*>oid_obj
        return 0

    def __len__(self):
        return self.nrec

    cdef Py_ssize_t _index(self, Py_ssize_t i) except -1:
        if i < 0:
            i += self.nrec
        if i < 0 or i >= self.nrec:
            raise IndexError("batch index out of range")
        return i

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self.result(i) for i in range(*index.indices(self.nrec))]
        return self.result(self._index(index))

    def __iter__(self):
        for i in range(self.nrec):
            yield self.result(i)

    def __reversed__(self):
        for i in range(self.nrec - 1, -1, -1):
            yield self.result(i)

    def __contains__(self, value):
        return any(r == value for r in self)

    def index(self, value, start=0, stop=None):
        return list(self).index(value, start, self.nrec if stop is None else stop)

    def count(self, value):
        return list(self).count(value)

    def code(self, Py_ssize_t index):
        return CODES[self.rec[self._index(index)].code]

    def order_id(self, Py_ssize_t index):
        cdef Rec* r = &self.rec[self._index(index)]
        if r.oid_obj != NULL:
            return <object>r.oid_obj
        return r.oid if r.has_oid else None

    def event_count(self):
        return self.nev

    cdef object result(self, Py_ssize_t i):
        cdef Rec* r = &self.rec[i]
        cdef Py_ssize_t start = 0 if i == 0 else self.rec[i - 1].end
        cdef Py_ssize_t j
        if r.end == start:
            events = _NO_EVENTS
        else:
            events = tuple([self.event(j, r.seq0 + 1 + (j - start), r.ts) for j in range(start, r.end)])
        o = M_RESULT.new()
        _put(o, M_RESULT.off[0], CODES[r.code])
        _put(o, M_RESULT.off[1], events)
        _put(o, M_RESULT.off[2], self.order_id(i))
        return o

    cdef object event(self, Py_ssize_t j, int64_t seq, int64_t ts):
        cdef Ev* e = &self.ev[j]
        cdef int k = e.kind
        cdef _Maker m
        cdef Py_ssize_t* off
        if k == K_DELTA:
            m = M_DELTA
            o = m.new()
            off = m.off
            _put(o, off[0], seq)
            _put(o, off[1], e.md_seq)
            _put(o, off[2], ts)
            _put(o, off[3], <object>e.p0)
            _put(o, off[4], SIDES[e.side])
            _put(o, off[5], e.i0)
            _put(o, off[6], e.i1)
            _put(o, off[7], e.i2)
            return o
        if k == K_FILL:
            m = M_FILL
            o = m.new()
            off = m.off
            _put(o, off[0], seq)
            _put(o, off[1], e.md_seq)
            _put(o, off[2], ts)
            _put(o, off[3], e.i0)
            _put(o, off[4], <object>e.p0)
            _put(o, off[5], e.i1)
            _put(o, off[6], e.i2)
            _put(o, off[7], SIDES[e.side])
            _put(o, off[8], e.i3)
            _put(o, off[9], <object>e.p1)
            _put(o, off[10], e.i4)
            _put(o, off[11], e.i5)
            _put(o, off[12], <object>e.p2)
            _put(o, off[13], e.i6)
            _put(o, off[14], ORIGINS[e.flag])
            return o
        if k == K_ACCEPTED:
            cmd = <object>e.p0
            m = M_ACCEPTED
            o = m.new()
            off = m.off
            _put(o, off[0], seq)
            _put(o, off[1], ts)
            _put(o, off[2], e.i0)
            _put(o, off[3], _get(cmd, N_COID))
            _put(o, off[4], _get(cmd, N_PART))
            _put(o, off[5], _get(cmd, N_SESSION))
            _put(o, off[6], _get(cmd, N_SYM))
            _put(o, off[7], _get(cmd, N_SIDE))
            _put(o, off[8], _get(cmd, N_TYPE))
            _put(o, off[9], _get(cmd, N_TIF))
            _put(o, off[10], _get(cmd, N_PRICE))
            _put(o, off[11], _get(cmd, N_QTY))
            _put(o, off[12], _get(cmd, N_EXP))
            _put(o, off[13], _get(cmd, N_POST))
            return o
        if k == K_CANCELLED or k == K_EXPIRED:
            m = M_CANCELLED if k == K_CANCELLED else M_EXPIRED
            o = m.new()
            off = m.off
            _put(o, off[0], seq)
            _put(o, off[1], ts)
            _put(o, off[2], e.i0)
            _put(o, off[3], <object>e.p0)
            _put(o, off[4], <object>e.p1)
            _put(o, off[5], SIDES[e.side])
            _put(o, off[6], e.i1)
            if k == K_CANCELLED:  # a mass cancel's reason outside CancelReason is kept as given
                _put(o, off[7], REASONS[e.code] if e.p2 == NULL else <object>e.p2)
            return o
        if k == K_AMENDED:
            m = M_AMENDED
            o = m.new()
            off = m.off
            _put(o, off[0], seq)
            _put(o, off[1], ts)
            _put(o, off[2], e.i0)
            _put(o, off[3], <object>e.p0)
            _put(o, off[4], <object>e.p1)
            _put(o, off[5], SIDES[e.side])
            _put(o, off[6], e.i1)
            _put(o, off[7], e.i2)
            _put(o, off[8], e.i3)
            _put(o, off[9], True if e.flag else False)
            return o
        if k == K_REJECTED:
            cmd = <object>e.p0
            m = M_REJECTED
            o = m.new()
            off = m.off
            _put(o, off[0], seq)
            _put(o, off[1], cmd.ts)
            _put(o, off[2], cmd.participant)
            _put(o, off[3], cmd.client_order_id if type(cmd) is _NewOrder else "")
            _put(o, off[4], <object>e.p1)
            _put(o, off[5], None if e.p2 == NULL else <object>e.p2)
            _put(o, off[6], CODES[e.code])
            return o
        return <object>e.p0  # K_OBJECT: built when emitted (rare events)


Sequence.register(ResultBatch)


# ==================================================================== book internals

# Orders and levels stay out of the cyclic GC (a large book made every full collection walk them):
# their only cycles are the book links, which leave with the order (``Level.unlink``) or are cut
# when the side is freed (``BookSide.__dealloc__``).
@cython.no_gc
@cython.freelist(256)
cdef class Order:
    cdef int64_t order_id, price, key, qty, remaining, expire_ts, accepted_ts
    cdef bint has_expiry, post_only
    cdef int side, tif, stp
    cdef object client_order_id, participant, session, symbol
    cdef Level level
    cdef Order prev, next


@cython.no_gc
@cython.freelist(256)
cdef class Level:
    cdef int64_t price, key, qty, count
    cdef Order head, tail

    cdef inline void append(self, Order order):
        cdef Order tail = self.tail
        order.prev = tail
        order.next = None
        if tail is None:
            self.head = order
        else:
            tail.next = order
        self.tail = order
        order.level = self
        self.qty += order.remaining
        self.count += 1

    cdef inline void unlink(self, Order order):
        cdef Order prev = order.prev
        cdef Order nxt = order.next
        if prev is None:
            self.head = nxt
        else:
            prev.next = nxt
        if nxt is None:
            self.tail = prev
        else:
            nxt.prev = prev
        order.prev = None
        order.next = None
        order.level = None
        self.qty -= order.remaining
        self.count -= 1


cdef class BookSide:
    """Price levels of one side: keys sorted descending in a C array, best (smallest key) last."""

    cdef int side
    cdef int64_t* keys
    cdef PyObject** lv
    cdef Py_ssize_t n, cap

    def __cinit__(self, int side):
        self.side = side
        self.cap = 64
        self.n = 0
        self.keys = <int64_t*>malloc(self.cap * sizeof(int64_t))
        self.lv = <PyObject**>malloc(self.cap * sizeof(PyObject*))
        if self.keys == NULL or self.lv == NULL:
            raise MemoryError()

    def __dealloc__(self):
        cdef Py_ssize_t i
        cdef Level level
        cdef Order order, nxt
        if self.lv != NULL:
            for i in range(self.n):
                level = <Level>self.lv[i]
                order = level.head
                level.head = level.tail = None
                while order is not None:  # cut the links: orders and levels are not GC-tracked
                    nxt = order.next
                    order.prev = order.next = None
                    order.level = None
                    order = nxt
                level = None
                Py_XDECREF(self.lv[i])
            free(self.lv)
        free(self.keys)

    cdef inline Py_ssize_t lower(self, int64_t key):
        """First index whose key is <= ``key`` (keys descending)."""
        cdef Py_ssize_t lo = 0, hi = self.n, mid
        cdef int64_t* keys = self.keys
        # the touch is at the end: check the tail first
        if hi and keys[hi - 1] > key:
            return hi
        while lo < hi:
            mid = (lo + hi) >> 1
            if keys[mid] > key:
                lo = mid + 1
            else:
                hi = mid
        return lo

    cdef inline Level get(self, int64_t key):
        cdef Py_ssize_t i = self.lower(key)
        if i < self.n and self.keys[i] == key:
            return <Level>self.lv[i]
        return None

    cdef inline Level best(self):
        if self.n:
            return <Level>self.lv[self.n - 1]
        return None

    cdef Level add(self, Order order):
        cdef int64_t key = order.key
        cdef Py_ssize_t i = self.lower(key)
        cdef Level level
        if i < self.n and self.keys[i] == key:
            level = <Level>self.lv[i]
        else:
            if self.n == self.cap:
                self.grow()
            if i < self.n:
                memmove(&self.keys[i + 1], &self.keys[i], (self.n - i) * sizeof(int64_t))
                memmove(&self.lv[i + 1], &self.lv[i], (self.n - i) * sizeof(PyObject*))
            level = Level.__new__(Level)
            level.price = order.price
            level.key = key
            Py_INCREF(level)
            self.keys[i] = key
            self.lv[i] = <PyObject*>level
            self.n += 1
        level.append(order)
        return level

    cdef void grow(self) except *:
        cdef int64_t* keys = <int64_t*>realloc(self.keys, 2 * self.cap * sizeof(int64_t))
        if keys == NULL:
            raise MemoryError()
        self.keys = keys
        cdef PyObject** lv = <PyObject**>realloc(self.lv, 2 * self.cap * sizeof(PyObject*))
        if lv == NULL:
            raise MemoryError()
        self.lv = lv
        self.cap *= 2

    cdef Level remove(self, Order order):
        cdef Level level = order.level
        cdef Py_ssize_t i
        level.unlink(order)
        if not level.count:
            i = self.lower(level.key)
            Py_XDECREF(self.lv[i])  # level stays alive: we hold ``level``
            self.n -= 1
            if i < self.n:
                memmove(&self.keys[i], &self.keys[i + 1], (self.n - i) * sizeof(int64_t))
                memmove(&self.lv[i], &self.lv[i + 1], (self.n - i) * sizeof(PyObject*))
        return level

    cdef list levels_best_first(self):
        cdef Py_ssize_t i
        return [<Level>self.lv[i] for i in range(self.n - 1, -1, -1)]

    cdef list orders(self):
        cdef list out = []
        cdef Level level
        cdef Order order
        for level in self.levels_best_first():
            order = level.head
            while order is not None:
                out.append(order)
                order = order.next
        return out


cdef class Book:
    cdef object spec, symbol
    cdef int64_t md_seq, min_qty, max_qty, band_low, band_high
    cdef int status
    cdef BookSide bids, asks
    cdef int64_t last_price  # of the last trade (when ``has_last``): the indicative uncross's reference
    cdef bint has_last

    cdef inline bint crossed(self):
        return self.bids.n and self.asks.n and -self.bids.keys[self.bids.n - 1] >= self.asks.keys[self.asks.n - 1]

    def __cinit__(self, spec, int64_t md_seq):
        self.set_spec(spec)
        self.md_seq = md_seq
        self.bids = BookSide(BUY)
        self.asks = BookSide(SELL)

    cdef void set_spec(self, spec) except *:
        self.spec = spec
        self.symbol = spec.symbol
        self.min_qty = spec.min_qty
        self.max_qty = spec.max_qty
        self.band_low = spec.band_low
        self.band_high = spec.band_high
        self.status = int(spec.status)


def _spec_error(spec) -> bool:
    numbers = (spec.tick_size, spec.lot_size, spec.min_qty, spec.max_qty, spec.band_low, spec.band_high)
    if type(spec.symbol) is not str or type(spec.status) is not InstrumentStatus:
        return True
    if any(type(n) is not int for n in numbers):
        return True
    if max(spec.min_qty, spec.max_qty) > QTY_LIMIT or max(spec.band_low, spec.band_high) > SPEC_LIMIT:
        return True
    return (
        not spec.symbol
        or spec.tick_size <= 0
        or spec.lot_size <= 0
        or spec.min_qty < 1
        or spec.max_qty < spec.min_qty
        or spec.band_low < 1
        or spec.band_high < spec.band_low
        or spec.status is InstrumentStatus.CLOSED
    )


cdef int _entry_blocked(int status):
    if status == PRE_OPEN:
        return C_INSTRUMENT_NOT_OPEN
    if status == HALTED:
        return C_INSTRUMENT_HALTED
    return C_INSTRUMENT_CLOSED


ctypedef struct Auction:
    bint found
    int64_t price, volume, imbalance


cdef Auction _auction(Book book, bint has_ref, int64_t ref):
    """The uncross price, volume and imbalance: the rule of ``engine.engine._auction``, on the C arrays."""
    cdef Auction out
    out.found = False
    out.price = out.volume = out.imbalance = 0
    if not book.crossed():
        return out
    cdef BookSide bids = book.bids, asks = book.asks
    cdef int64_t low = asks.keys[asks.n - 1]
    cdef int64_t high = -bids.keys[bids.n - 1]
    # asks ascending: index asks.n - 1 down to 0; bids ascending: index 0 up to bids.n - 1
    cdef Py_ssize_t ai = asks.n - 1, bj = bids.n - 1, j
    while bj > 0 and -bids.keys[bj - 1] >= low:
        bj -= 1
    cdef int64_t demand = 0, supply = 0, price, volume, imbalance, absimb, dist
    for j in range(bj, bids.n):
        demand += (<Level>bids.lv[j]).qty
    cdef bint have = False, all_buy = True
    cdef int64_t best_volume = 0, best_absimb = 0, best_dist = 0
    cdef int64_t first_price = 0, first_volume = 0, first_imb = 0, last_price = 0, last_volume = 0, last_imb = 0
    while (ai >= 0 and asks.keys[ai] <= high) or bj < bids.n:
        if ai >= 0 and asks.keys[ai] <= high and (bj >= bids.n or asks.keys[ai] <= -bids.keys[bj]):
            price = asks.keys[ai]
        else:
            price = -bids.keys[bj]
        while ai >= 0 and asks.keys[ai] == price:
            supply += (<Level>asks.lv[ai]).qty
            ai -= 1
        volume = demand if demand < supply else supply
        imbalance = demand - supply
        absimb = imbalance if imbalance >= 0 else -imbalance
        dist = 0
        if has_ref:
            dist = price - ref if price >= ref else ref - price
        if (not have or volume > best_volume or (volume == best_volume and (absimb < best_absimb
                or (absimb == best_absimb and dist < best_dist)))):
            have = True
            best_volume = volume
            best_absimb = absimb
            best_dist = dist
            first_price = last_price = price
            first_volume = last_volume = volume
            first_imb = last_imb = imbalance
            all_buy = imbalance > 0
        elif volume == best_volume and absimb == best_absimb and dist == best_dist:
            last_price = price
            last_volume = volume
            last_imb = imbalance
            all_buy = all_buy and imbalance > 0
        while bj < bids.n and -bids.keys[bj] == price:
            demand -= (<Level>bids.lv[bj]).qty
            bj += 1
    out.found = True
    if all_buy:
        out.price = last_price
        out.volume = last_volume
        out.imbalance = last_imb
    else:
        out.price = first_price
        out.volume = first_volume
        out.imbalance = first_imb
    return out


# ==================================================================== engine

cdef class Engine:
    """In-memory matching engine for many instruments (compiled). ``process`` never raises for bad input."""

    cdef int64_t _seq, _clock, _next_order_id, _next_trade_id, _gtd_live
    cdef dict _books, _orders, _by_participant
    cdef list _expiries
    cdef ResultBatch out
    cdef list _calls  # books in a call that the command at hand changed: an IndicativeUncross is due
    # levels changed by the command at hand whose delta is still due: (book, side, price), first-touch order
    cdef list _dirty_books
    cdef int64_t* _dirty_side
    cdef int64_t* _dirty_price
    cdef Py_ssize_t _ndirty, _capdirty

    def __cinit__(self):
        self._capdirty = 16
        self._ndirty = 0
        self._dirty_side = <int64_t*>malloc(self._capdirty * sizeof(int64_t))
        self._dirty_price = <int64_t*>malloc(self._capdirty * sizeof(int64_t))
        if self._dirty_side == NULL or self._dirty_price == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self._dirty_side)
        free(self._dirty_price)

    def __init__(self):
        self._seq = 0
        self._clock = 0
        self._next_order_id = 1
        self._next_trade_id = 1
        self._gtd_live = 0
        self._books = {}
        self._orders = {}
        self._by_participant = {}
        self._expiries = []
        self._dirty_books = []
        self._ndirty = 0
        self._calls = []

    # ================================================================ public API

    @property
    def seq(self):
        return self._seq

    @property
    def clock(self):
        return self._clock

    def process(self, cmd):
        cdef ResultBatch batch = ResultBatch.__new__(ResultBatch)
        self.out = batch
        try:
            self._dispatch(cmd)
        finally:
            self.out = None
        return batch.result(0)

    def process_many(self, commands):
        """Process ``commands`` in order; one call for a whole batch (same results as ``process``)."""
        cdef ResultBatch batch = ResultBatch.__new__(ResultBatch)
        self.out = batch
        try:
            for cmd in commands:
                self._dispatch(cmd)
        finally:
            self.out = None
        return batch

    cdef int _dispatch(self, cmd) except -1:
        cdef int64_t seq0 = self._seq
        t = type(cmd)
        if t is _AmendOrder:
            self._amend(cmd)
        elif t is _NewOrder:
            self._new_order(cmd)
        elif t is _CancelOrder:
            self._cancel(cmd)
        elif t is MassCancel:
            self._mass_cancel(cmd)
        elif t is AdvanceTime:
            self._advance_time(cmd)
        elif t is AddInstrument:
            self._add_instrument(cmd)
        elif t is SetInstrumentStatus:
            self._set_status(cmd)
        elif t is Cross:
            self._cross(cmd)
        elif t is Uncross:
            self._uncross(cmd)
        else:
            raise TypeError(f"not an engine command: {t.__name__}")
        cdef Rec* r = &self.out.rec[self.out.nrec - 1]
        if self._calls:
            self._indicate()
            r.end = self.out.nev
        r.seq0 = seq0
        r.ts = self._clock  # events only follow a valid ts, which became the clock
        return 0

    def symbols(self):
        return tuple(self._books)

    def spec(self, symbol):
        book = self._books.get(symbol)
        return None if book is None else (<Book>book).spec

    def l2(self, symbol, depth=None):
        book = self._books.get(symbol)
        if book is None:
            raise UnknownInstrumentError(f"unknown instrument {symbol!r}")
        b = <Book>book
        return L2Snapshot(symbol=symbol, md_seq=b.md_seq, status=b.spec.status,
                          bids=_levels(b.bids, depth), asks=_levels(b.asks, depth))

    def order(self, order_id):
        order = self._orders.get(order_id)
        return None if order is None else _view(<Order>order)

    def open_orders(self, participant=None, symbol=None):
        if participant is None:
            candidates = list(self._orders.values())
        else:
            candidates = list(self._by_participant.get(participant, {}).values())
        candidates.sort(key=_by_id)
        return [_view(<Order>o) for o in candidates if symbol is None or (<Order>o).symbol == symbol]

    # ================================================================ events

    cdef inline void _touch(self, Book book, int side, int64_t price) except *:
        cdef Py_ssize_t i
        cdef list books = self._dirty_books
        for i in range(self._ndirty):
            if self._dirty_price[i] == price and self._dirty_side[i] == side and books[i] is book:
                return
        cdef int64_t* grown
        if self._ndirty == self._capdirty:
            grown = <int64_t*>realloc(self._dirty_side, 2 * self._capdirty * sizeof(int64_t))
            if grown == NULL:
                raise MemoryError()
            self._dirty_side = grown
            grown = <int64_t*>realloc(self._dirty_price, 2 * self._capdirty * sizeof(int64_t))
            if grown == NULL:
                raise MemoryError()
            self._dirty_price = grown
            self._capdirty *= 2
        books.append(book)
        self._dirty_side[self._ndirty] = side
        self._dirty_price[self._ndirty] = price
        self._ndirty += 1

    cdef inline void _flush(self, Book book, int side, int64_t price, int64_t ts) except *:
        cdef Py_ssize_t i, j
        cdef list books = self._dirty_books
        for i in range(self._ndirty):
            if self._dirty_price[i] == price and self._dirty_side[i] == side and books[i] is book:
                del books[i]
                for j in range(i, self._ndirty - 1):
                    self._dirty_side[j] = self._dirty_side[j + 1]
                    self._dirty_price[j] = self._dirty_price[j + 1]
                self._ndirty -= 1
                self._delta(book, side, price, ts)
                return

    cdef inline void _flush_all(self, int64_t ts) except *:
        cdef Py_ssize_t i
        cdef list books = self._dirty_books
        for i in range(self._ndirty):
            self._delta(<Book>books[i], <int>self._dirty_side[i], self._dirty_price[i], ts)
        self._ndirty = 0
        del books[:]

    cdef void _delta(self, Book book, int side, int64_t price, int64_t ts) except *:
        cdef BookSide bs = book.bids if side == BUY else book.asks
        cdef Level level = bs.get(price if side == SELL else -price)
        if book.status == CALL:
            self._mark_call(book)
        self._seq += 1
        book.md_seq += 1
        cdef Ev* e = self.out.push()
        e.kind = K_DELTA
        e.md_seq = book.md_seq
        e.side = side
        e.i0 = price
        if level is None:
            e.i1 = 0
            e.i2 = 0
        else:
            e.i1 = level.qty
            e.i2 = level.count
        Py_INCREF(book.symbol)
        e.p0 = <PyObject*>book.symbol

    cdef inline void _level_delta(self, Book book, int side, Level level, int64_t ts) except *:
        if book.status == CALL:
            self._mark_call(book)
        self._seq += 1
        book.md_seq += 1
        cdef Ev* e = self.out.push()
        e.kind = K_DELTA
        e.md_seq = book.md_seq
        e.side = side
        e.i0 = level.price
        e.i1 = level.qty
        e.i2 = level.count
        Py_INCREF(book.symbol)
        e.p0 = <PyObject*>book.symbol

    cdef inline void _ev_order(self, int kind, Order order, int64_t remaining, int reason, int64_t ts) except *:
        self._seq += 1
        cdef Ev* e = self.out.push()
        e.kind = kind
        e.i0 = order.order_id
        e.i1 = remaining
        e.side = order.side
        e.code = reason
        Py_INCREF(order.participant)
        e.p0 = <PyObject*>order.participant
        Py_INCREF(order.symbol)
        e.p1 = <PyObject*>order.symbol

    cdef inline void _amended(self, Order order, bint priority_kept, int64_t ts) except *:
        self._seq += 1
        cdef Ev* e = self.out.push()
        e.kind = K_AMENDED
        e.i0 = order.order_id
        e.i1 = order.price
        e.i2 = order.qty
        e.i3 = order.remaining
        e.side = order.side
        e.flag = priority_kept
        Py_INCREF(order.participant)
        e.p0 = <PyObject*>order.participant
        Py_INCREF(order.symbol)
        e.p1 = <PyObject*>order.symbol

    cdef int _reject(self, cmd, symbol, order_id, int code) except -1:
        self._seq += 1
        cdef Ev* e = self.out.push()
        e.kind = K_REJECTED
        e.code = code
        Py_INCREF(cmd)
        e.p0 = <PyObject*>cmd
        Py_INCREF(symbol)
        e.p1 = <PyObject*>symbol
        if order_id is not None:
            Py_INCREF(order_id)
            e.p2 = <PyObject*>order_id
            self.out.finish(code, 0, 0, order_id)
        else:
            self.out.finish(code, 0, 0, None)
        return 0

    cdef inline int _done(self, int code) except -1:
        return self.out.finish(code, 0, 0, None)

    # ================================================================ new order

    cdef int _new_order(self, cmd) except -1:
        ts_obj = _get(cmd, N_TS)
        if not PyLong_CheckExact(ts_obj) or not _is_i64(ts_obj) or <int64_t>ts_obj < self._clock:
            return self._reject(cmd, _get(cmd, N_SYM), None, C_INVALID_TIME)
        cdef int64_t ts = <int64_t>ts_obj
        self._clock = ts
        symbol = _get(cmd, N_SYM)
        book_obj = self._books.get(symbol)
        if book_obj is None:
            return self._reject(cmd, symbol, None, C_UNKNOWN_INSTRUMENT)
        cdef Book book = <Book>book_obj
        # ---- validation, in the reference's order
        cdef bint call = book.status == CALL
        if book.status != OPEN and not call:
            return self._reject(cmd, symbol, None, _entry_blocked(book.status))
        qty_obj = _get(cmd, N_QTY)
        if not PyLong_CheckExact(qty_obj):
            return self._reject(cmd, symbol, None, C_INVALID_QUANTITY)
        cdef int64_t qty = _clamp(qty_obj)
        if qty <= 0:
            return self._reject(cmd, symbol, None, C_INVALID_QUANTITY)
        if qty < book.min_qty:
            return self._reject(cmd, symbol, None, C_QUANTITY_BELOW_MIN)
        if qty > book.max_qty:
            return self._reject(cmd, symbol, None, C_QUANTITY_ABOVE_MAX)
        tif_obj = _get(cmd, N_TIF)
        side_obj = _get(cmd, N_SIDE)
        type_obj = _get(cmd, N_TYPE)
        stp_obj = _get(cmd, N_STP)
        post_obj = _get(cmd, N_POST)
        if (type(tif_obj) is not _TimeInForce or type(side_obj) is not _Side or type(type_obj) is not _OrderType
                or type(stp_obj) is not _StpMode or type(post_obj) is not bool):
            return self._reject(cmd, symbol, None, C_INVALID_ORDER_FLAGS)
        cdef int tif = <int>tif_obj
        cdef bint market = type_obj is _MARKET_OBJ
        cdef bint post_only = post_obj is True
        exp_obj = _get(cmd, N_EXP)
        if post_only and (market or tif == IOC or tif == FOK):
            return self._reject(cmd, symbol, None, C_INVALID_ORDER_FLAGS)
        if exp_obj is not None and tif != GTD:
            return self._reject(cmd, symbol, None, C_INVALID_ORDER_FLAGS)
        if market and tif == GTD:
            return self._reject(cmd, symbol, None, C_INVALID_ORDER_FLAGS)
        price_obj = _get(cmd, N_PRICE)
        cdef int64_t price = 0
        if price_obj is None:
            if not market:
                return self._reject(cmd, symbol, None, C_MISSING_PRICE)
        elif not PyLong_CheckExact(price_obj):
            return self._reject(cmd, symbol, None, C_INVALID_PRICE)
        else:
            price = _clamp(price_obj)
            if price <= 0:
                return self._reject(cmd, symbol, None, C_INVALID_PRICE)
            if price < book.band_low or price > book.band_high:
                return self._reject(cmd, symbol, None, C_PRICE_OUTSIDE_BAND)
        cdef int64_t expire_ts = 0
        if tif == GTD:
            if exp_obj is None:
                return self._reject(cmd, symbol, None, C_MISSING_EXPIRY)
            if not PyLong_CheckExact(exp_obj) or not _is_i64(exp_obj):
                return self._reject(cmd, symbol, None, C_INVALID_ORDER_FLAGS)
            expire_ts = <int64_t>exp_obj
            if expire_ts <= ts:
                return self._reject(cmd, symbol, None, C_EXPIRY_IN_PAST)
        if call and (market or tif == IOC or tif == FOK):
            return self._reject(cmd, symbol, None, C_NOT_ALLOWED_IN_CALL)
        # ---- matching-outcome checks
        cdef int side = <int>side_obj
        cdef bint is_buy = side == BUY
        cdef int64_t limit
        if price_obj is None:
            limit = book.band_high if is_buy else book.band_low
        else:
            limit = price
        cdef int64_t limit_key = limit if is_buy else -limit
        cdef BookSide opp = book.asks if is_buy else book.bids
        participant = _get(cmd, N_PART)
        cdef int stp = <int>stp_obj
        cdef Level best
        if call:  # a call collects orders: no matching, so no matching-outcome checks
            pass
        elif post_only:
            best = opp.best()
            if best is not None and best.key <= limit_key:
                return self._reject(cmd, symbol, None, C_POST_ONLY_WOULD_CROSS)
        elif tif == FOK:
            if self._fillable(opp, limit_key, participant, stp, ts, qty) < qty:
                return self._reject(cmd, symbol, None, C_FOK_NOT_FILLABLE)
        elif market and not self._has_liquidity(opp, limit_key, ts):
            return self._reject(cmd, symbol, None, C_NO_LIQUIDITY)

        cdef int64_t oid = self._next_order_id
        self._next_order_id = oid + 1
        cdef Order order = Order.__new__(Order)
        order.order_id = oid
        order.client_order_id = _get(cmd, N_COID)
        order.participant = participant
        order.session = _get(cmd, N_SESSION)
        order.symbol = symbol
        order.side = side
        order.price = limit
        order.key = -limit if is_buy else limit
        order.qty = qty
        order.remaining = qty
        order.tif = tif
        order.has_expiry = exp_obj is not None
        order.expire_ts = expire_ts
        order.accepted_ts = ts
        order.post_only = post_only
        order.stp = stp
        self._seq += 1
        cdef Ev* e = self.out.push()
        e.kind = K_ACCEPTED
        e.i0 = oid
        Py_INCREF(cmd)
        e.p0 = <PyObject*>cmd
        cdef bint alive = True
        best = opp.best()
        if not call and best is not None and best.key <= limit_key:
            alive = self._match(book, order, opp, limit_key, ts)
        if alive and order.remaining:
            if market or tif == IOC or tif == FOK:
                self._ev_order(K_CANCELLED, order, order.remaining, R_IOC, ts)
            else:
                if self._ndirty:  # not reached today (matching flushes every level it touched)
                    self._rest(book, order)
                    self._flush_all(ts)
                else:  # the resting level is the command's only pending delta: emit it at once
                    self._level_delta(book, side, (book.bids if is_buy else book.asks).add(order), ts)
                self._index(order)
                if order.has_expiry:
                    self._push_expiry(order)
        return self.out.finish(C_OK, 1, oid, None)

    cdef inline void _rest(self, Book book, Order order) except *:
        cdef Level level = (book.bids if order.side == BUY else book.asks).add(order)
        self._touch(book, order.side, level.price)

    cdef inline void _index(self, Order order) except *:
        oid = order.order_id  # one int object for both indexes
        self._orders[oid] = order
        parts = self._by_participant.get(order.participant)
        if parts is None:
            parts = self._by_participant[order.participant] = {}
        (<dict>parts)[oid] = order
        if order.has_expiry:
            self._gtd_live += 1

    cdef inline void _forget(self, Order order) except *:
        oid = order.order_id
        del self._orders[oid]
        parts = <dict>self._by_participant[order.participant]
        del parts[oid]
        if not parts:
            del self._by_participant[order.participant]
        if order.has_expiry:
            self._gtd_live -= 1

    cdef void _push_expiry(self, Order order) except *:
        heapq.heappush(self._expiries, (order.expire_ts, order.order_id))
        if len(self._expiries) > 2 * self._gtd_live + 1024:
            self._expiries = [(o.expire_ts, o.order_id) for o in self._orders.values() if (<Order>o).has_expiry]
            heapq.heapify(self._expiries)

    cdef inline Level _drop(self, Book book, Order order):
        cdef Level level = (book.bids if order.side == BUY else book.asks).remove(order)
        self._forget(order)
        return level

    cdef void _cancel_resting(self, Book book, Order order, int reason, int64_t ts) except *:
        cdef int64_t remaining = order.remaining
        cdef Level level = self._drop(book, order)
        self._ev_order(K_CANCELLED, order, remaining, reason, ts)
        self._touch(book, order.side, level.price)

    cdef void _expire_resting(self, Book book, Order order, int64_t ts) except *:
        cdef int64_t remaining = order.remaining
        cdef Level level = self._drop(book, order)
        self._ev_order(K_EXPIRED, order, remaining, 0, ts)
        self._touch(book, order.side, level.price)

    cdef inline void _push_fill(self, Book book, int origin, int64_t price, int64_t qty, int aggressor,
                                int64_t maker_id, int64_t maker_rem, object maker_party,
                                int64_t taker_id, int64_t taker_rem, object taker_party) except *:
        """Record one fill: the next trade id, seq and the book's md_seq, then a ``K_FILL`` event."""
        cdef int64_t trade_id = self._next_trade_id
        self._next_trade_id = trade_id + 1
        self._seq += 1
        book.md_seq += 1
        cdef Ev* e = self.out.push()
        e.kind = K_FILL
        e.flag = origin
        e.md_seq = book.md_seq
        e.i0 = trade_id
        e.i1 = price
        e.i2 = qty
        e.side = aggressor
        e.i3 = maker_id
        e.i4 = maker_rem
        e.i5 = taker_id
        e.i6 = taker_rem
        Py_INCREF(book.symbol)
        e.p0 = <PyObject*>book.symbol
        Py_INCREF(maker_party)
        e.p1 = <PyObject*>maker_party
        Py_INCREF(taker_party)
        e.p2 = <PyObject*>taker_party

    # ================================================================ matching

    cdef bint _match(self, Book book, Order taker, BookSide opp, int64_t limit_key, int64_t ts) except -1:
        cdef object participant = taker.participant
        cdef int aggressor = taker.side
        cdef int maker_side = opp.side
        cdef Level level
        cdef Order maker, nxt
        cdef int64_t price, ended, qty, maker_rem, taker_rem
        cdef bint filled, traded
        cdef int mode
        while True:
            level = opp.best()
            if level is None or level.key > limit_key:
                return True
            price = level.price
            ended = -1
            filled = False
            traded = False
            maker = level.head
            while maker is not None:
                nxt = maker.next
                if maker.has_expiry and maker.expire_ts <= ts:
                    self._expire_resting(book, maker, ts)
                elif maker.participant is participant or maker.participant == participant:
                    mode = taker.stp
                    if mode == CANCEL_NEWEST:
                        ended = taker.remaining
                        break
                    if mode == CANCEL_OLDEST:
                        self._cancel_resting(book, maker, R_STP, ts)
                    elif mode == CANCEL_BOTH:
                        self._cancel_resting(book, maker, R_STP, ts)
                        ended = taker.remaining
                        break
                    else:
                        ended = self._decrement(book, taker, maker, level, ts)
                        if ended >= 0:
                            break
                else:
                    taker_rem = taker.remaining
                    maker_rem = maker.remaining
                    qty = taker_rem if taker_rem < maker_rem else maker_rem
                    maker_rem -= qty
                    taker_rem -= qty
                    maker.remaining = maker_rem
                    taker.remaining = taker_rem
                    level.qty -= qty
                    self._push_fill(book, O_CONTINUOUS, price, qty, aggressor,
                                    maker.order_id, maker_rem, maker.participant,
                                    taker.order_id, taker_rem, participant)
                    if not traded:
                        traded = True
                        self._touch(book, maker_side, price)
                        book.last_price = price
                        book.has_last = True
                    if not maker_rem:
                        self._drop(book, maker)
                    if not taker_rem:
                        filled = True
                        break
                maker = nxt
            self._flush(book, maker_side, price, ts)
            if ended >= 0:
                self._ev_order(K_CANCELLED, taker, ended, R_STP, ts)
                return False
            if filled:
                return True

    cdef int64_t _decrement(self, Book book, Order taker, Order maker, Level level, int64_t ts) except -2:
        cdef int64_t qty = taker.remaining if taker.remaining < maker.remaining else maker.remaining
        if maker.remaining == qty:
            self._cancel_resting(book, maker, R_STP, ts)
        else:
            maker.remaining -= qty
            maker.qty -= qty
            level.qty -= qty
            self._amended(maker, True, ts)
            self._touch(book, maker.side, level.price)
        if taker.remaining == qty:
            taker.remaining = 0
            return qty
        taker.remaining -= qty
        taker.qty -= qty
        self._amended(taker, True, ts)
        return -1

    cdef int64_t _fillable(self, BookSide opp, int64_t limit_key, object participant, int stp, int64_t ts,
                           int64_t needed) except? -1:
        cdef int64_t total = 0
        cdef bint skip_own = stp == CANCEL_OLDEST
        cdef Py_ssize_t i
        cdef Level level
        cdef Order maker
        for i in range(opp.n - 1, -1, -1):
            if opp.keys[i] > limit_key:
                break
            level = <Level>opp.lv[i]
            maker = level.head
            while maker is not None:
                if not maker.has_expiry or maker.expire_ts > ts:
                    if maker.participant == participant:
                        if not skip_own:
                            return total
                    else:
                        total += maker.remaining
                        if total >= needed:
                            return total
                maker = maker.next
        return total

    cdef bint _has_liquidity(self, BookSide opp, int64_t limit_key, int64_t ts):
        cdef Py_ssize_t i
        cdef Order maker
        for i in range(opp.n - 1, -1, -1):
            if opp.keys[i] > limit_key:
                break
            maker = (<Level>opp.lv[i]).head
            while maker is not None:
                if not maker.has_expiry or maker.expire_ts > ts:
                    return True
                maker = maker.next
        return False

    # ================================================================ order management

    cdef inline Order _owned(self, participant, order_id):
        order = self._orders.get(order_id)
        if order is None or (<Order>order).participant != participant:
            return None
        return <Order>order

    cdef int _cancel(self, cmd) except -1:
        ts_obj = _get(cmd, C_TS)
        oid_obj = _get(cmd, C_OID)
        if not PyLong_CheckExact(ts_obj) or not _is_i64(ts_obj) or <int64_t>ts_obj < self._clock:
            return self._reject(cmd, "", oid_obj, C_INVALID_TIME)
        cdef int64_t ts = <int64_t>ts_obj
        self._clock = ts
        cdef Order order = self._owned(_get(cmd, C_PART), oid_obj)
        if order is None:
            return self._reject(cmd, "", oid_obj, C_UNKNOWN_ORDER)
        cdef Book book = <Book>self._books[order.symbol]
        if order.has_expiry and order.expire_ts <= ts:
            self._expire_resting(book, order, ts)
            self._flush_all(ts)
            return self._reject(cmd, order.symbol, order.order_id, C_UNKNOWN_ORDER)
        self._cancel_resting(book, order, R_USER, ts)
        self._flush_all(ts)
        return self.out.finish(C_OK, 1, order.order_id, None)

    cdef int _amend(self, cmd) except -1:
        ts_obj = _get(cmd, A_TS)
        oid_obj = _get(cmd, A_OID)
        if not PyLong_CheckExact(ts_obj) or not _is_i64(ts_obj) or <int64_t>ts_obj < self._clock:
            return self._reject(cmd, "", oid_obj, C_INVALID_TIME)
        cdef int64_t ts = <int64_t>ts_obj
        self._clock = ts
        cdef Order order = self._owned(_get(cmd, A_PART), oid_obj)
        if order is None:
            return self._reject(cmd, "", oid_obj, C_UNKNOWN_ORDER)
        cdef Book book = <Book>self._books[order.symbol]
        symbol = order.symbol
        if order.has_expiry and order.expire_ts <= ts:
            self._expire_resting(book, order, ts)
            self._flush_all(ts)
            return self._reject(cmd, symbol, order.order_id, C_UNKNOWN_ORDER)
        cdef bint call = book.status == CALL
        if book.status != OPEN and not call:
            return self._reject(cmd, symbol, order.order_id, _entry_blocked(book.status))
        cdef int64_t filled = order.qty - order.remaining
        qty_obj = _get(cmd, A_QTY)
        price_obj = _get(cmd, A_PRICE)
        cdef int64_t new_qty = order.qty
        cdef int64_t new_price = order.price
        cdef int code = C_OK
        if qty_obj is not None:
            if not PyLong_CheckExact(qty_obj):
                code = C_INVALID_QUANTITY
            else:
                new_qty = _clamp(qty_obj)
                if new_qty <= 0:
                    code = C_INVALID_QUANTITY
                elif new_qty <= filled:
                    code = C_AMEND_QTY_TOO_LOW
                elif new_qty < book.min_qty:
                    code = C_QUANTITY_BELOW_MIN
                elif new_qty > book.max_qty:
                    code = C_QUANTITY_ABOVE_MAX
        if not code and price_obj is not None:
            if not PyLong_CheckExact(price_obj):
                code = C_INVALID_PRICE
            else:
                new_price = _clamp(price_obj)
                if new_price <= 0:
                    code = C_INVALID_PRICE
                elif new_price < book.band_low or new_price > book.band_high:
                    code = C_PRICE_OUTSIDE_BAND
        if not code and new_qty == order.qty and new_price == order.price:
            code = C_AMEND_NO_CHANGE
        if code:
            return self._reject(cmd, symbol, order.order_id, code)
        cdef int side = order.side
        cdef int64_t new_key = new_price if side == SELL else -new_price
        cdef BookSide own = book.bids if side == BUY else book.asks
        cdef BookSide opp = book.asks if side == BUY else book.bids
        cdef Level best = opp.best()
        if not call and order.post_only and new_price != order.price and best is not None and best.key <= -new_key:
            return self._reject(cmd, symbol, order.order_id, C_POST_ONLY_WOULD_CROSS)
        cdef int64_t cut
        cdef Level level
        if new_price == order.price and new_qty < order.qty:
            cut = order.qty - new_qty
            order.qty = new_qty
            order.remaining -= cut
            level = order.level
            level.qty -= cut
            self._amended(order, True, ts)
            self._delta(book, side, new_price, ts)
            return self.out.finish(C_OK, 1, order.order_id, None)

        # loses priority: out of its level (the indexes keep it unless it ends below)
        level = own.remove(order)
        order.price = new_price
        order.key = new_key
        order.qty = new_qty
        order.remaining = new_qty - filled
        self._amended(order, False, ts)
        if new_price != level.price:
            self._delta(book, side, level.price, ts)
        cdef bint alive = True
        cdef int64_t limit_key = -new_key
        if not call and best is not None and best.key <= limit_key:
            alive = self._match(book, order, opp, limit_key, ts)
        if alive and order.remaining:
            self._rest(book, order)
        else:
            self._forget(order)
        self._flush_all(ts)
        return self.out.finish(C_OK, 1, order.order_id, None)

    cdef int _mass_cancel(self, cmd) except -1:
        ts = cmd.ts
        symbol = cmd.symbol
        if type(ts) is not int or not _is_i64(ts) or ts < self._clock:
            return self._reject(cmd, symbol or "", None, C_INVALID_TIME)
        self._clock = ts
        if symbol is not None and symbol not in self._books:
            return self._reject(cmd, symbol, None, C_UNKNOWN_INSTRUMENT)
        parts = self._by_participant.get(cmd.participant)
        cdef Order o
        cdef int side = 0
        if parts:
            side_obj = cmd.side
            if side_obj is not None:
                side = BUY if side_obj is _BUY_OBJ else (SELL if side_obj is _SELL_OBJ else -1)
            session = cmd.session
            chosen = []
            for o in (<dict>parts).values():
                if ((symbol is None or o.symbol == symbol) and (side == 0 or o.side == side)
                        and (session is None or o.session == session)):
                    chosen.append(o)
            chosen.sort(key=_by_id)
            reason = cmd.reason
            if type(reason) is CancelReason:
                self._cancel_many(chosen, int(reason), ts, None)
            else:
                self._cancel_many(chosen, 0, ts, reason)
        return self._done(C_OK)

    cdef void _cancel_many(self, list chosen, int reason, int64_t ts, object other_reason) except *:
        cdef dict last = _last_touch(chosen)
        cdef Py_ssize_t i
        cdef Order order
        cdef Book book
        cdef Ev* e
        for i in range(len(chosen)):
            order = <Order>chosen[i]
            book = <Book>self._books[order.symbol]
            self._cancel_resting(book, order, reason, ts)
            if other_reason is not None:  # the cancel is the last event pushed
                e = &self.out.ev[self.out.nev - 1]
                Py_INCREF(other_reason)
                e.p2 = <PyObject*>other_reason
            if last[(order.symbol, order.side, order.price)] == i:
                self._flush(book, order.side, order.price, ts)

    cdef int _advance_time(self, cmd) except -1:
        ts_obj = cmd.ts
        if type(ts_obj) is not int or not _is_i64(ts_obj) or ts_obj < self._clock:
            return self._done(C_INVALID_TIME)
        cdef int64_t ts = ts_obj
        self._clock = ts
        heap = self._expiries
        orders = self._orders
        due = []
        cdef Order order
        while heap and heap[0][0] <= ts:
            expire_ts, oid = heapq.heappop(heap)
            found = orders.get(oid)
            if found is not None and (<Order>found).expire_ts == expire_ts:
                due.append(found)
        cdef dict last
        cdef Py_ssize_t i
        cdef Book book
        if due:
            last = _last_touch(due)
            for i in range(len(due)):
                order = <Order>due[i]
                book = <Book>self._books[order.symbol]
                self._expire_resting(book, order, ts)
                if last[(order.symbol, order.side, order.price)] == i:
                    self._flush(book, order.side, order.price, ts)
        return self._done(C_OK)

    # ================================================================ instruments

    cdef int _add_instrument(self, cmd) except -1:
        ts = cmd.ts
        if type(ts) is not int or not _is_i64(ts) or ts < self._clock:
            return self._done(C_INVALID_TIME)
        self._clock = ts
        spec = cmd.spec
        if type(spec) is not InstrumentSpec or _spec_error(spec):
            return self._done(C_INVALID_INSTRUMENT_SPEC)
        if spec.symbol in self._books:
            return self._done(C_INSTRUMENT_EXISTS)
        self._books[spec.symbol] = Book(spec, 0)
        self._seq += 1
        self._object_event(InstrumentAdded(seq=self._seq, ts=ts, spec=spec))
        return self._done(C_OK)

    cdef void _object_event(self, event) except *:
        cdef Ev* e = self.out.push()
        e.kind = K_OBJECT
        Py_INCREF(event)
        e.p0 = <PyObject*>event

    cdef Book _book_at(self, cmd):
        """The operator commands' prologue: advance the clock to ``cmd.ts`` and find the book; on a
        bad time or an unknown symbol, finish the result with the refusal and return None."""
        ts_obj = cmd.ts
        if type(ts_obj) is not int or not _is_i64(ts_obj) or ts_obj < self._clock:
            self._done(C_INVALID_TIME)
            return None
        self._clock = <int64_t>ts_obj
        book_obj = self._books.get(cmd.symbol)
        if book_obj is None:
            self._done(C_UNKNOWN_INSTRUMENT)
            return None
        return <Book>book_obj

    cdef int _set_status(self, cmd) except -1:
        cdef Book book = self._book_at(cmd)
        if book is None:
            return 0
        cdef int64_t ts = self._clock
        status = cmd.status
        if type(status) is not InstrumentStatus or (book.status, int(status)) not in _TRANSITIONS:
            return self._done(C_INVALID_STATUS_TRANSITION)
        if status == OPEN and book.crossed():  # halted during a call: only an uncross can open it
            return self._done(C_BOOK_CROSSED)
        book.set_spec(dataclasses.replace(book.spec, status=status))
        self._seq += 1
        book.md_seq += 1
        self._object_event(
            InstrumentStatusChanged(seq=self._seq, md_seq=book.md_seq, ts=ts, symbol=cmd.symbol, status=status))
        if book.status == CLOSED:
            self._cancel_many(book.bids.orders() + book.asks.orders(), R_CLOSED, ts, None)
        elif book.status == CALL:
            self._mark_call(book)
        return self._done(C_OK)

    # ================================================================ call auction

    cdef void _mark_call(self, Book book) except *:
        cdef Py_ssize_t i
        for i in range(len(self._calls)):
            if self._calls[i] is book:
                return
        self._calls.append(book)

    cdef void _indicate(self) except *:
        cdef Book book
        cdef Auction a
        cdef int64_t ts = self._clock
        for b in self._calls:
            book = <Book>b
            if book.status != CALL:
                continue
            a = _auction(book, book.has_last, book.last_price)
            self._seq += 1
            book.md_seq += 1
            self._object_event(IndicativeUncross(
                seq=self._seq, md_seq=book.md_seq, ts=ts, symbol=book.symbol,
                price=a.price if a.found else None, volume=a.volume,
                imbalance_side=_BUY_OBJ if a.imbalance > 0 else (_SELL_OBJ if a.imbalance < 0 else None),
                imbalance_qty=a.imbalance if a.imbalance >= 0 else -a.imbalance))
        del self._calls[:]

    cdef int _uncross(self, cmd) except -1:
        cdef Book book = self._book_at(cmd)
        if book is None:
            return 0
        cdef int64_t ts = self._clock
        if book.status != CALL:
            return self._done(C_NOT_IN_CALL)
        then = cmd.then
        if type(then) is not InstrumentStatus or (then != OPEN and then != CALL):
            return self._done(C_INVALID_STATUS_TRANSITION)
        ref = cmd.reference_price
        if ref is not None and (type(ref) is not int or not _is_i64(ref) or ref <= 0):
            return self._done(C_INVALID_PRICE)
        symbol = book.symbol
        orders = self._orders
        due = []
        for expire_ts, oid in self._expiries:
            found = orders.get(oid)
            if (expire_ts <= ts and found is not None and (<Order>found).symbol == symbol
                    and (<Order>found).expire_ts == expire_ts):
                due.append((expire_ts, oid))
        due.sort()
        for expire_ts, oid in due:
            self._expire_resting(book, <Order>orders[oid], ts)
        cdef Auction a = _auction(book, ref is not None, 0 if ref is None else <int64_t>ref)
        if a.found:
            self._allocate(book, a.price, a.volume, ts)
        self._flush_all(ts)
        book.set_spec(dataclasses.replace(book.spec, status=then))
        self._seq += 1
        book.md_seq += 1
        self._object_event(
            InstrumentStatusChanged(seq=self._seq, md_seq=book.md_seq, ts=ts, symbol=symbol, status=then))
        if book.status == CALL:
            self._mark_call(book)
        return self._done(C_OK)

    cdef void _allocate(self, Book book, int64_t price, int64_t volume, int64_t ts) except *:
        cdef Order buy, sell, taker, maker
        cdef int64_t qty
        while volume:  # the pair is always the two best orders: each step uses one of them up
            buy = book.bids.best().head
            sell = book.asks.best().head
            qty = buy.remaining if buy.remaining < sell.remaining else sell.remaining
            volume -= qty
            self._touch(book, BUY, buy.price)
            self._touch(book, SELL, sell.price)
            if buy.participant is sell.participant or buy.participant == sell.participant:
                self._auction_decrement(book, buy, qty, ts)
                self._auction_decrement(book, sell, qty, ts)
                continue
            if buy.order_id > sell.order_id:
                taker = buy
                maker = sell
            else:
                taker = sell
                maker = buy
            buy.remaining -= qty
            sell.remaining -= qty
            buy.level.qty -= qty
            sell.level.qty -= qty
            self._push_fill(book, O_AUCTION, price, qty, taker.side,
                            maker.order_id, maker.remaining, maker.participant,
                            taker.order_id, taker.remaining, taker.participant)
            book.last_price = price
            book.has_last = True
            if not buy.remaining:
                self._drop(book, buy)
            if not sell.remaining:
                self._drop(book, sell)

    cdef void _auction_decrement(self, Book book, Order order, int64_t qty, int64_t ts) except *:
        if order.remaining == qty:
            self._cancel_resting(book, order, R_STP, ts)
        else:
            order.remaining -= qty
            order.qty -= qty
            order.level.qty -= qty
            self._amended(order, True, ts)

    # ================================================================ crosses

    cdef int _cross(self, cmd) except -1:
        cdef Book book = self._book_at(cmd)
        if book is None:
            return 0
        cdef int64_t ts = self._clock
        origin = cmd.origin
        qty_obj = cmd.qty
        price_obj = cmd.price
        cdef int code = C_OK
        if book.status != OPEN:
            code = C_NOT_ALLOWED_IN_CALL if book.status == CALL else _entry_blocked(book.status)
        elif type(origin) is not TradeOrigin or (origin != O_RFQ and origin != O_BLOCK):
            code = C_INVALID_TRADE_ORIGIN
        elif cmd.buyer == cmd.seller:
            code = C_SELF_CROSS
        elif type(qty_obj) is not int or qty_obj <= 0:
            code = C_INVALID_QUANTITY
        elif qty_obj < book.min_qty:
            code = C_QUANTITY_BELOW_MIN
        elif qty_obj > book.max_qty:
            code = C_QUANTITY_ABOVE_MAX
        elif type(price_obj) is not int or price_obj <= 0:
            code = C_INVALID_PRICE
        elif price_obj < book.band_low or price_obj > book.band_high:
            code = C_PRICE_OUTSIDE_BAND
        if code:
            return self._done(code)
        cdef int64_t buy_id = self._next_order_id
        self._next_order_id = buy_id + 2  # the seller's side is buy_id + 1
        book.last_price = <int64_t>price_obj
        book.has_last = True
        # a cross has no resting side: the seller is reported as the maker, the buyer as the taker
        self._push_fill(book, <int>origin, <int64_t>price_obj, <int64_t>qty_obj, BUY,
                        buy_id + 1, 0, cmd.seller, buy_id, 0, cmd.buyer)
        return self.out.finish(C_OK, 1, buy_id, None)

    # ================================================================ invariants

    def validate(self):
        """Raise ``InvariantError`` unless every book and index is consistent."""
        cdef dict seen = {}
        cdef Book book
        for symbol, b in self._books.items():
            book = <Book>b
            _check(book.spec.symbol == symbol, f"{symbol}: book keyed under another symbol")
            _check(not _spec_error(dataclasses.replace(book.spec, status=InstrumentStatus.OPEN)),
                   f"{symbol}: invalid spec")
            _check(book.status == int(book.spec.status) and book.band_low == book.spec.band_low
                   and book.band_high == book.spec.band_high and book.min_qty == book.spec.min_qty
                   and book.max_qty == book.spec.max_qty, f"{symbol}: cached spec differs")
            if book.status in (CLOSED, PRE_OPEN):
                _check(not book.bids.n and not book.asks.n, f"{symbol}: orders rest while not tradable")
            self._validate_side(book, book.bids, seen)
            self._validate_side(book, book.asks, seen)
            if book.status != CALL and book.status != HALTED:  # halted: maybe during a call
                _check(not book.crossed(), f"{symbol}: crossed book")
        _check(seen.keys() == self._orders.keys(), "order index differs from the books")
        indexed = 0
        for participant, parts in self._by_participant.items():
            _check(bool(parts), f"empty participant index for {participant}")
            for oid, order in parts.items():
                _check(seen.get(oid) is order and (<Order>order).participant == participant,
                       f"participant index: {oid}")
            indexed += len(parts)
        _check(indexed == len(self._orders), "participant index size differs")
        gtd = [o for o in self._orders.values() if (<Order>o).has_expiry]
        _check(len(gtd) == self._gtd_live, "GTD counter differs")
        pending = set(self._expiries)
        for o in gtd:
            _check(((<Order>o).expire_ts, (<Order>o).order_id) in pending,
                   f"GTD order {(<Order>o).order_id} has no expiry entry")
        _check(all(oid < self._next_order_id for oid in self._orders), "order id beyond the counter")
        _check(self._ndirty == 0, "level deltas left pending")

    cdef void _validate_side(self, Book book, BookSide side, dict seen) except *:
        symbol = book.symbol
        cdef Py_ssize_t i
        cdef Level level
        cdef Order order, prev
        cdef int64_t total, count
        for i in range(side.n):
            _check(i == 0 or side.keys[i - 1] > side.keys[i], f"{symbol}: price keys not sorted")
            level = <Level>side.lv[i]
            key = side.keys[i]
            _check(level.key == key, f"{symbol}: level key")
            _check(key == (level.price if side.side == SELL else -level.price), f"{symbol}: level price/key")
            _check(book.band_low <= level.price <= book.band_high, f"{symbol}: level outside band")
            total = count = 0
            prev = None
            order = level.head
            while order is not None:
                oid = order.order_id
                _check(oid not in seen, f"order {oid} linked twice")
                seen[oid] = order
                _check(self._orders.get(oid) is order, f"order {oid} not indexed")
                _check(order.level is level and order.prev is prev, f"order {oid}: broken links")
                _check(order.side == side.side and order.symbol == symbol, f"order {oid}: wrong side/book")
                _check(order.price == level.price and order.key == key, f"order {oid}: wrong level")
                _check(0 < order.remaining <= order.qty, f"order {oid}: remaining {order.remaining}/{order.qty}")
                _check(order.tif in (GTC, GTD), f"order {oid}: resting {TIFS[order.tif].name}")
                _check((order.tif == GTD) == order.has_expiry, f"order {oid}: expiry vs tif")
                total += order.remaining
                count += 1
                prev = order
                order = order.next
            _check(level.tail is prev, f"{symbol}: level tail")
            _check(count > 0 and level.count == count, f"{symbol}@{level.price}: count {level.count} != {count}")
            _check(level.qty == total, f"{symbol}@{level.price}: qty {level.qty} != {total}")

    # ================================================================ snapshot

    def snapshot(self):
        """All state as plain JSON data; resting orders in exact priority order."""
        instruments = []
        cdef Book book
        for b in self._books.values():
            book = <Book>b
            spec = book.spec
            instruments.append({
                "symbol": spec.symbol,
                "tick_size": spec.tick_size,
                "lot_size": spec.lot_size,
                "min_qty": spec.min_qty,
                "max_qty": spec.max_qty,
                "band_low": spec.band_low,
                "band_high": spec.band_high,
                "status": spec.status.name,
                "md_seq": book.md_seq,
                "last_price": book.last_price if book.has_last else None,
                "orders": [_order_data(<Order>o) for o in book.bids.orders() + book.asks.orders()],
            })
        return {
            "format": SNAPSHOT_FORMAT,
            "seq": self._seq,
            "clock": self._clock,
            "next_order_id": self._next_order_id,
            "next_trade_id": self._next_trade_id,
            "instruments": instruments,
        }

    @classmethod
    def from_snapshot(cls, data):
        try:
            return _restore(cls, data)
        except SnapshotError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise SnapshotError(f"malformed engine snapshot: {exc!r}") from exc


cdef object _restore(cls, data):
    if data.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError(f"unsupported snapshot format {data.get('format')!r}")
    cdef Engine engine = cls()
    engine._seq = _int(data["seq"])
    engine._clock = _int(data["clock"])
    engine._next_order_id = _int(data["next_order_id"])
    engine._next_trade_id = _int(data["next_trade_id"])
    cdef Book book
    cdef Order order
    for item in data["instruments"]:
        spec = InstrumentSpec(
            symbol=str(item["symbol"]),
            tick_size=_int(item["tick_size"]),
            lot_size=_int(item["lot_size"]),
            min_qty=_int(item["min_qty"]),
            max_qty=_int(item["max_qty"]),
            band_low=_int(item["band_low"]),
            band_high=_int(item["band_high"]),
            status=InstrumentStatus[item["status"]],
        )
        if spec.symbol in engine._books:
            raise SnapshotError(f"instrument {spec.symbol!r} twice")
        book = Book(spec, _int(item["md_seq"]))
        engine._books[spec.symbol] = book
        last_price = item.get("last_price")  # absent in snapshots taken before call auctions
        book.has_last = last_price is not None
        book.last_price = 0 if last_price is None else _int(last_price)
        for row in item["orders"]:
            expire_ts = row["expire_ts"]
            order = Order.__new__(Order)
            order.order_id = _int(row["order_id"])
            order.client_order_id = str(row["client_order_id"])
            order.participant = str(row["participant"])
            order.session = str(row["session"])
            order.symbol = spec.symbol
            order.side = int(Side[row["side"]])
            order.price = _int(row["price"])
            order.key = order.price if order.side == SELL else -order.price
            order.qty = _int(row["qty"])
            order.remaining = _int(row["remaining"])
            order.tif = int(TimeInForce[row["tif"]])
            order.has_expiry = expire_ts is not None
            order.expire_ts = 0 if expire_ts is None else _int(expire_ts)
            order.accepted_ts = _int(row["accepted_ts"])
            order.post_only = bool(row["post_only"])
            order.stp = int(StpMode[row["stp"]])
            if order.order_id in engine._orders:
                raise SnapshotError(f"order {order.order_id} twice")
            (book.bids if order.side == BUY else book.asks).add(order)
            engine._index(order)
            if order.has_expiry:
                engine._expiries.append((order.expire_ts, order.order_id))
    heapq.heapify(engine._expiries)
    try:
        engine.validate()
    except InvariantError as exc:
        raise SnapshotError(f"inconsistent engine snapshot: {exc}") from exc
    return engine


# ==================================================================== helpers


def _check(ok, message):
    if not ok:
        raise InvariantError(message)


def _int(value):
    if type(value) is not int or not -INT64_MAX <= value <= INT64_MAX:
        raise SnapshotError(f"expected an integer, got {value!r}")
    return value


def _by_id(order):
    return (<Order>order).order_id


cdef dict _last_touch(list orders):
    cdef dict out = {}
    cdef Py_ssize_t i
    cdef Order o
    for i in range(len(orders)):
        o = <Order>orders[i]
        out[(o.symbol, o.side, o.price)] = i
    return out


cdef tuple _levels(BookSide side, depth):
    cdef list levels = side.levels_best_first()
    if depth is not None:
        levels = levels[:max(depth, 0)]
    cdef Level level
    return tuple([LevelView(price=level.price, qty=level.qty, count=level.count) for level in levels])


cdef object _view(Order order):
    return OrderView(
        order_id=order.order_id,
        client_order_id=order.client_order_id,
        participant=order.participant,
        session=order.session,
        symbol=order.symbol,
        side=SIDES[order.side],
        price=order.price,
        qty=order.qty,
        remaining=order.remaining,
        tif=TIFS[order.tif],
        expire_ts=order.expire_ts if order.has_expiry else None,
        accepted_ts=order.accepted_ts,
    )


cdef dict _order_data(Order order):
    return {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "participant": order.participant,
        "session": order.session,
        "side": SIDES[order.side].name,
        "price": order.price,
        "qty": order.qty,
        "remaining": order.remaining,
        "tif": TIFS[order.tif].name,
        "expire_ts": order.expire_ts if order.has_expiry else None,
        "accepted_ts": order.accepted_ts,
        "post_only": order.post_only,
        "stp": STPS[order.stp].name,
    }
