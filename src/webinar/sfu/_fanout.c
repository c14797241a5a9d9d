/* Native fan-out of one batch of media packets to a producer's plain-path consumers.
 *
 * What Consumer.forward's plain path does per packet (src/webinar/sfu/consumer.py), for
 * every consumer in steady state at once: rewrite the RTP header for the subscriber
 * (marker|PT, sequence number and timestamp offsets, SSRC, the one-byte header extension
 * block with MID and abs-send-time / audio level), SRTP-protect it with libsrtp's
 * srtp_protect (the function pylibsrtp loaded, passed in as an address by setup()) on
 * the subscriber's current session, and send one consumer's packets of the batch with one
 * sendmmsg() on its ICE pair's UDP socket. The consumer's numbering and send counters live
 * in one C struct (Numbers, the consumer's _n): the offsets are read from it, and the
 * packet and byte counts, the highest output sequence number and the last packet sent are
 * written to it, so the Python code sees exactly what its own path would have left.
 *
 * Any consumer not in steady state (paused ones are skipped as Python skips them; a
 * layer selector, waiting for a keyframe, not started, no sink, the sink's SRTP session or
 * ICE pair changed since the sink last resolved them, a relayed/TCP pair) is returned to
 * the caller untouched, which forwards to it in Python. The function never raises for a
 * consumer's trouble and never blocks: the socket is written with MSG_DONTWAIT and what
 * the kernel does not take is dropped and counted.
 *
 * See docs/architecture.md ("Native fan-out"). Pure-Python fallback: WEBINAR_NATIVE_FANOUT=0. Built by webinar/sfu/build.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define MAX_PACKET 1500
#define SLOT_SIZE (MAX_PACKET + 148) /* + SRTP trailer room, as PacketSink's buffer */
#define CHUNK 64

typedef int (*protect_fn)(void *ctx, void *hdr, int *len);

static protect_fn srtp_protect_ptr = NULL;
static PyObject *consumer_type = NULL; /* webinar.sfu.consumer.Consumer */
static PyObject *connected = NULL;     /* aiortc's DTLS State.CONNECTED */
static PyObject *one = NULL;           /* the key of the nominated RTP pair */

static unsigned long long n_sent = 0, n_dropped = 0, n_protect_failed = 0, n_calls = 0;
/* the receive path's (see "receive" below) */
static unsigned long long n_rx_parsed = 0, n_rx_declined = 0, n_rx_refused = 0;
static unsigned long long n_rtcp_parsed = 0, n_rtcp_declined = 0;

/* interned attribute names */
static PyObject *s_paused, *s_sel, *s_need_keyframe, *s_started, *s_sink, *s_dtls, *s_state,
    *s_tx_srtp, *s_session, *s_nominated, *s_pair, *s_n,
    *s_target, *s_native_layout,
    *s_seq, *s_timestamp, *s_marker, *s_payload, *s_audio_level, *s_abs_send_time;

typedef struct {
    PyObject *mp;
    long long seq;
    uint32_t ts;
    int marker;
    const unsigned char *payload;
    Py_ssize_t plen;
    int level;
    unsigned char ast[3];
} Pkt;

/* A consumer's numbering and send counters (Consumer._n), kept in one C struct: the
 * native path reads the offsets and writes the counters, the highest output number and
 * the last packet sent here directly, where it read and wrote eight Python attributes
 * and ints per subscriber and batch. Python reads and writes them as attributes. */
typedef struct {
    PyObject_HEAD
    long long seq_offset, base_seq, highest_out, ts_offset, packets, bytes;
    PyObject *last; /* the last MediaPacket sent, or None */
} NumbersObject;

static void numbers_dealloc(NumbersObject *self) {
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->last);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int numbers_traverse(NumbersObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->last);
    return 0;
}

static int numbers_clear(NumbersObject *self) {
    Py_CLEAR(self->last);
    return 0;
}

static PyObject *numbers_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    if (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_SetString(PyExc_TypeError, "Numbers() takes no arguments");
        return NULL;
    }
    NumbersObject *self = (NumbersObject *)type->tp_alloc(type, 0); /* zeroed */
    if (self == NULL) return NULL;
    Py_INCREF(Py_None);
    self->last = Py_None;
    return (PyObject *)self;
}

static PyObject *numbers_get_last(NumbersObject *self, void *closure) {
    Py_INCREF(self->last);
    return self->last;
}

static int numbers_set_last(NumbersObject *self, PyObject *value, void *closure) {
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "last cannot be deleted");
        return -1;
    }
    Py_INCREF(value);
    Py_SETREF(self->last, value);
    return 0;
}

static PyMemberDef numbers_members[] = {
    {"seq_offset", T_LONGLONG, offsetof(NumbersObject, seq_offset), 0, "output minus input number"},
    {"base_seq", T_LONGLONG, offsetof(NumbersObject, base_seq), 0, "first input number forwarded"},
    {"highest_out", T_LONGLONG, offsetof(NumbersObject, highest_out), 0, "highest extended output number"},
    {"ts_offset", T_LONGLONG, offsetof(NumbersObject, ts_offset), 0, "output minus input timestamp"},
    {"packets", T_LONGLONG, offsetof(NumbersObject, packets), 0, "packets sent"},
    {"bytes", T_LONGLONG, offsetof(NumbersObject, bytes), 0, "payload octets sent"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef numbers_getset[] = {
    {"last", (getter)numbers_get_last, (setter)numbers_set_last, "the last packet sent", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject NumbersType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "webinar.sfu._fanout.Numbers",
    .tp_basicsize = sizeof(NumbersObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A consumer's numbering and send counters (see webinar.sfu.native.numbers).",
    .tp_new = numbers_new,
    .tp_dealloc = (destructor)numbers_dealloc,
    .tp_traverse = (traverseproc)numbers_traverse,
    .tp_clear = (inquiry)numbers_clear,
    .tp_members = numbers_members,
    .tp_getset = numbers_getset,
};

#define GSO_MAX_SEGMENTS 64 /* the kernel's UDP_MAX_SEGMENTS (older kernels) */
#define GSO_MAX_BYTES 60000

static unsigned char bufs[CHUNK][SLOT_SIZE];
static struct iovec iovs[CHUNK];
static struct mmsghdr msgs[CHUNK];
static unsigned char cmsg_bufs[CHUNK][CMSG_SPACE(sizeof(uint16_t))];
static int slot_pkt[CHUNK];
static int gso_enabled = 0; /* set_gso(); native.py: WEBINAR_NATIVE_GSO=1 */
static unsigned long long n_gso_failed = 0;
/* datagrams the kernel refused one by one (EPERM from a firewall, ...), skipped */
static unsigned long long n_refused = 0;

static int get_ll(PyObject *obj, PyObject *name, long long *out) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) return -1;
    *out = PyLong_AsLongLong(v);
    Py_DECREF(v);
    if (*out == -1 && PyErr_Occurred()) return -1;
    return 0;
}

static int get_truth(PyObject *obj, PyObject *name) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) return -1;
    int t = PyObject_IsTrue(v);
    Py_DECREF(v);
    return t;
}

/* Read one batch's packets (once, for every consumer). */
static int read_packets(PyObject *batch, Pkt *pkts, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *mp = PyList_GET_ITEM(batch, i);
        Pkt *p = &pkts[i];
        long long v;
        p->mp = mp;
        if (get_ll(mp, s_seq, &p->seq) < 0) return -1;
        if (get_ll(mp, s_timestamp, &v) < 0) return -1;
        p->ts = (uint32_t)v;
        if (get_ll(mp, s_marker, &v) < 0) return -1;
        p->marker = v ? 1 : 0;
        if (get_ll(mp, s_audio_level, &v) < 0) return -1;
        p->level = (int)v;
        PyObject *payload = PyObject_GetAttr(mp, s_payload);
        if (payload == NULL) return -1;
        if (!PyBytes_Check(payload)) {
            Py_DECREF(payload);
            PyErr_SetString(PyExc_TypeError, "payload must be bytes");
            return -1;
        }
        /* the MediaPacket (held by the batch list) keeps its payload alive */
        p->payload = (const unsigned char *)PyBytes_AS_STRING(payload);
        p->plen = PyBytes_GET_SIZE(payload);
        Py_DECREF(payload);
        if (p->plen > MAX_PACKET - 100) {
            /* no room for the largest header: the Python path handles it */
            PyErr_SetString(PyExc_ValueError, "payload too large");
            return -1;
        }
        PyObject *ast = PyObject_GetAttr(mp, s_abs_send_time);
        if (ast == NULL) return -1;
        if (PyBytes_Check(ast) && PyBytes_GET_SIZE(ast) >= 3) {
            memcpy(p->ast, PyBytes_AS_STRING(ast), 3);
        } else {
            memset(p->ast, 0, 3);
        }
        Py_DECREF(ast);
    }
    return 0;
}

/* The consumer's fixed per-layout state and its sink's resolved state; 0: take it
 * natively, 1: leave it to Python, -1: error (Python's too). */
typedef struct {
    NumbersObject *nums; /* the consumer's _n */
    PyObject *sink;
    int fd;
    const struct sockaddr *sa;
    socklen_t salen;
    void *ctx;
    long long seq_offset, base_seq, highest_out, ts_offset;
    int pt, video, var_id, has_level, head_len;
    const unsigned char *middle, *middle_nl;
    Py_ssize_t middle_len;
    PyObject *middle_obj, *middle_nl_obj, *sa_obj;
    /* transport-wide sequence numbers (video, when the subscriber took the extension): the
     * TwccSender's arrays (next number, send time in ms, number, size), stamped per packet
     * exactly as TwccSender.stamp does */
    int twcc, twcc_views;
    Py_buffer tw[4];
    long long *tw_next, *tw_seq, *tw_size;
    double *tw_at, now_ms;
    Py_ssize_t tw_mask;
} Cons;

static void cons_release(Cons *c) {
    for (int i = 0; i < c->twcc_views; i++) PyBuffer_Release(&c->tw[i]);
    c->twcc_views = 0;
    Py_CLEAR(c->nums);
    Py_CLEAR(c->sink);
    Py_CLEAR(c->middle_obj);
    Py_CLEAR(c->middle_nl_obj);
    Py_CLEAR(c->sa_obj);
}

/* The TwccSender's arrays (TwccSender.native): (next, sent_at, sent_seq, size).
 * 0: usable, 1: not, -1: error. */
static int read_twcc(PyObject *arrays, Cons *c) {
    if (!PyTuple_Check(arrays) || PyTuple_GET_SIZE(arrays) != 4) return 1;
    for (int i = 0; i < 4; i++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(arrays, i), &c->tw[i], PyBUF_WRITABLE) < 0)
            return -1;
        c->twcc_views = i + 1;
        if (c->tw[i].itemsize != 8) return 1;
    }
    Py_ssize_t n = c->tw[1].len / 8;
    if (c->tw[0].len != 8 || n < 1 || (n & (n - 1)) != 0 || c->tw[2].len != n * 8 ||
        c->tw[3].len != n * 8)
        return 1;
    c->tw_next = (long long *)c->tw[0].buf;
    c->tw_at = (double *)c->tw[1].buf;
    c->tw_seq = (long long *)c->tw[2].buf;
    c->tw_size = (long long *)c->tw[3].buf;
    c->tw_mask = n - 1;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now); /* what time.monotonic() reads on Linux */
    c->now_ms = (double)now.tv_sec * 1000.0 + (double)now.tv_nsec / 1e6;
    c->twcc = 1;
    return 0;
}

/* The consumer's header layout, fixed by set_layout: its _native_layout tuple (pt, video,
 * var_id, has_level, head_len, middle, middle_no_level, twcc arrays or None).
 * 0: usable, 1: not, -1: error. */
static int read_layout(PyObject *co, Cons *c) {
    c->middle_obj = PyObject_GetAttr(co, s_native_layout); /* holds the bytes below */
    if (c->middle_obj == NULL) return -1;
    PyObject *t = c->middle_obj;
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 8) return 1;
    PyObject *middle = PyTuple_GET_ITEM(t, 5), *middle_nl = PyTuple_GET_ITEM(t, 6);
    if (!PyBytes_Check(middle) || !PyBytes_Check(middle_nl)) return 1;
    c->pt = (int)PyLong_AsLong(PyTuple_GET_ITEM(t, 0));
    c->video = PyObject_IsTrue(PyTuple_GET_ITEM(t, 1));
    c->var_id = (int)PyLong_AsLong(PyTuple_GET_ITEM(t, 2));
    c->has_level = PyObject_IsTrue(PyTuple_GET_ITEM(t, 3));
    c->head_len = (int)PyLong_AsLong(PyTuple_GET_ITEM(t, 4));
    if (PyErr_Occurred() || c->video < 0 || c->has_level < 0) return -1;
    c->middle = (const unsigned char *)PyBytes_AS_STRING(middle);
    c->middle_nl = (const unsigned char *)PyBytes_AS_STRING(middle_nl);
    c->middle_len = PyBytes_GET_SIZE(middle);
    if (PyBytes_GET_SIZE(middle_nl) != c->middle_len) return 1;
    /* (payloads up to MAX_PACKET - 100 always fit) */
    if (c->head_len < 8 + c->middle_len || c->head_len > 100) return 1;
    PyObject *twcc = PyTuple_GET_ITEM(t, 7);
    if (twcc != Py_None) {
        if (!c->video) return 1;
        return read_twcc(twcc, c);
    }
    return 0;
}

static int read_consumer(PyObject *co, Cons *c) {
    int t;
    PyObject *v, *dtls, *x, *y;
    memset(c, 0, sizeof(*c));
    if ((t = get_truth(co, s_need_keyframe)) != 0) return t < 0 ? -1 : 1;
    if ((t = get_truth(co, s_started)) != 1) return t < 0 ? -1 : 1;
    v = PyObject_GetAttr(co, s_sel);
    if (v == NULL) return -1;
    t = v != Py_None;
    Py_DECREF(v);
    if (t) return 1;
    c->sink = PyObject_GetAttr(co, s_sink);
    if (c->sink == NULL) return -1;
    if (c->sink == Py_None) return 1;
    /* (fd, struct sockaddr, libsrtp context address), as the sink last resolved them */
    c->sa_obj = PyObject_GetAttr(c->sink, s_target);
    if (c->sa_obj == NULL) return -1;
    if (!PyTuple_Check(c->sa_obj) || PyTuple_GET_SIZE(c->sa_obj) != 3) return 1;
    long long fd = PyLong_AsLongLong(PyTuple_GET_ITEM(c->sa_obj, 0));
    long long ctx = PyLong_AsLongLong(PyTuple_GET_ITEM(c->sa_obj, 2));
    PyObject *sa = PyTuple_GET_ITEM(c->sa_obj, 1);
    if (PyErr_Occurred()) return -1;
    /* not resolved yet, or a TURN/TCP pair (Python sends) */
    if (fd < 0 || ctx == 0 || !PyBytes_Check(sa) || PyBytes_GET_SIZE(sa) < 8) return 1;
    c->fd = (int)fd;
    c->ctx = (void *)(uintptr_t)ctx;
    c->sa = (const struct sockaddr *)PyBytes_AS_STRING(sa);
    c->salen = (socklen_t)PyBytes_GET_SIZE(sa);
    /* what PacketSink.send_out checks per packet: connected, same session, same pair */
    dtls = PyObject_GetAttr(c->sink, s_dtls);
    if (dtls == NULL) return -1;
    x = PyObject_GetAttr(dtls, s_state);
    if (x == NULL) { Py_DECREF(dtls); return -1; }
    t = x == connected;
    Py_DECREF(x);
    if (!t) { Py_DECREF(dtls); return 1; }
    x = PyObject_GetAttr(dtls, s_tx_srtp);
    Py_DECREF(dtls);
    if (x == NULL) return -1;
    y = PyObject_GetAttr(c->sink, s_session);
    if (y == NULL) { Py_DECREF(x); return -1; }
    t = x == y && x != Py_None;
    Py_DECREF(x);
    Py_DECREF(y);
    if (!t) return 1;
    x = PyObject_GetAttr(c->sink, s_nominated);
    if (x == NULL) return -1;
    if (!PyDict_Check(x)) { Py_DECREF(x); return 1; }
    PyObject *pair = PyDict_GetItemWithError(x, one); /* borrowed */
    Py_DECREF(x);
    if (pair == NULL && PyErr_Occurred()) return -1;
    y = PyObject_GetAttr(c->sink, s_pair);
    if (y == NULL) return -1;
    t = pair == y && y != Py_None;
    Py_DECREF(y);
    if (!t) return 1;
    /* numbering and layout */
    v = PyObject_GetAttr(co, s_n);
    if (v == NULL) return -1;
    if (Py_TYPE(v) != &NumbersType) { Py_DECREF(v); return 1; }
    c->nums = (NumbersObject *)v;
    c->seq_offset = c->nums->seq_offset;
    c->base_seq = c->nums->base_seq;
    c->highest_out = c->nums->highest_out;
    c->ts_offset = c->nums->ts_offset;
    return read_layout(co, c);
}

/* Write one packet's header and payload as Consumer.forward's plain path does; returns
 * its length, or -1 if it does not fit. */
static int write_packet(const Cons *c, const Pkt *p, unsigned char *out, uint16_t seq) {
    int head = c->head_len;
    if (head + p->plen > MAX_PACKET) return -1;
    uint32_t ts = (uint32_t)((unsigned long long)p->ts + (unsigned long long)c->ts_offset);
    const unsigned char *middle = c->middle;
    int level = -1; /* byte after the middle for audio */
    int tail = 0;
    if (c->video) {
        tail = c->twcc ? 2 : c->var_id ? 3 : 0;
    } else if (c->has_level) {
        tail = 1;
        if (p->level >= 0) {
            level = p->level & 0xFF;
        } else {
            middle = c->middle_nl;
            level = 0;
        }
    }
    if (8 + c->middle_len + tail > head) return -1;
    out[0] = 0x90;
    out[1] = (unsigned char)((p->marker << 7) | (c->pt & 0x7F));
    out[2] = (unsigned char)(seq >> 8);
    out[3] = (unsigned char)seq;
    out[4] = (unsigned char)(ts >> 24);
    out[5] = (unsigned char)(ts >> 16);
    out[6] = (unsigned char)(ts >> 8);
    out[7] = (unsigned char)ts;
    memcpy(out + 8, middle, (size_t)c->middle_len);
    unsigned char *q = out + 8 + c->middle_len;
    if (tail == 3) {
        memcpy(q, p->ast, 3);
    } else if (tail == 2) {
        /* TwccSender.stamp: the next number, and what went out under it */
        long long n = *c->tw_next & 0xFFFF;
        *c->tw_next = (n + 1) & 0xFFFF;
        Py_ssize_t slot = (Py_ssize_t)n & c->tw_mask;
        c->tw_at[slot] = c->now_ms;
        c->tw_seq[slot] = n;
        c->tw_size[slot] = head + (long long)p->plen;
        q[0] = (unsigned char)(n >> 8);
        q[1] = (unsigned char)n;
    } else if (tail == 1) {
        q[0] = (unsigned char)level;
    }
    q += tail;
    memset(q, 0, (size_t)(out + head - q)); /* padding to 32 bits */
    memcpy(out + head, p->payload, (size_t)p->plen);
    return head + (int)p->plen;
}

/* One message per run of packets: with UDP GSO, a run of equal-sized packets (the last
 * one may be shorter) goes as one message the kernel cuts into datagrams (UDP_SEGMENT);
 * without it, one message per packet. */
static int build_msgs(const Cons *c, int k, int from, int gso, int *counts) {
    int m = 0;
    for (int j = from; j < k;) {
        int count = 1;
        if (gso) {
            size_t seg = iovs[j].iov_len, total = seg;
            while (j + count < k && count < GSO_MAX_SEGMENTS && total + seg <= GSO_MAX_BYTES) {
                size_t next = iovs[j + count].iov_len;
                if (next > seg) break;
                count++;
                total += next;
                if (next < seg) break; /* a shorter one ends the run */
            }
        }
        struct msghdr *h = &msgs[m].msg_hdr;
        memset(h, 0, sizeof(*h));
        h->msg_name = (void *)c->sa;
        h->msg_namelen = c->salen;
        h->msg_iov = &iovs[j];
        h->msg_iovlen = (size_t)count;
        if (count > 1) {
            struct cmsghdr *cm = (struct cmsghdr *)cmsg_bufs[m];
            memset(cmsg_bufs[m], 0, sizeof(cmsg_bufs[m]));
            h->msg_control = cmsg_bufs[m];
            h->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
            cm->cmsg_level = SOL_UDP;
            cm->cmsg_type = UDP_SEGMENT;
            cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t seg16 = (uint16_t)iovs[j].iov_len;
            memcpy(CMSG_DATA(cm), &seg16, sizeof(seg16));
        }
        counts[m] = count;
        m++;
        j += count;
    }
    return m;
}

/* Send the k protected packets in iovs[] to the consumer; returns how many were handed over
 * (a prefix: taken by the kernel, or refused one by one and skipped, as uvloop's sendto
 * goes on after an error; "refused" counts those). Never blocks: what does not fit (EAGAIN)
 * is dropped with the rest of the batch. */
static int send_packets(const Cons *c, int k) {
    int counts[CHUNK];
    int done = 0;
    while (done < k) {
        int gso = gso_enabled;
        int m = build_msgs(c, k, done, gso, counts);
        int sent_msgs = 0, progressed = 0;
        while (sent_msgs < m) {
            int r = sendmmsg(c->fd, msgs + sent_msgs, (unsigned int)(m - sent_msgs), MSG_DONTWAIT);
            if (r < 0) {
                if (errno == EINTR) continue;
                if (gso && counts[sent_msgs] > 1 &&
                    (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT ||
                     errno == EOPNOTSUPP)) {
                    gso_enabled = 0; /* no UDP GSO here: one datagram per message from now */
                    n_gso_failed++;
                    break;
                }
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS ||
                    errno == EBADF || errno == ENOTSOCK)
                    break; /* a full buffer, a closed socket: drop the rest, never block */
                /* The first message was refused on its own (a firewall's drop, EPERM; a route
                 * gone, ENETUNREACH): handed over as far as we can, like uvloop's sendto, which
                 * reports it to error_received and goes on. Skip it and send the rest, so one
                 * refused datagram does not take the rest of the frame with it. */
                n_refused++;
                done += counts[sent_msgs];
                sent_msgs++;
                progressed = 1;
                continue;
            }
            if (r == 0) break;
            for (int x = 0; x < r; x++) done += counts[sent_msgs + x];
            sent_msgs += r;
            progressed = 1;
        }
        if (sent_msgs == m) break;
        if (gso && !gso_enabled) continue; /* retry the rest without GSO */
        (void)progressed;
        break;
    }
    return done;
}

/* Send one consumer's packets of the batch; returns -1 on a Python error after which
 * nothing was sent yet (the caller leaves the consumer to Python), 0 otherwise. */
static int send_consumer(PyObject *co, Cons *c, Pkt *pkts, Py_ssize_t n) {
    long long highest = c->highest_out, sent_packets = 0, sent_bytes = 0;
    PyObject *last = NULL;
    for (Py_ssize_t start = 0; start < n; start += CHUNK) {
        Py_ssize_t end = start + CHUNK < n ? start + CHUNK : n;
        int k = 0;
        for (Py_ssize_t i = start; i < end; i++) {
            Pkt *p = &pkts[i];
            if (p->seq < c->base_seq) continue; /* from before this consumer started */
            long long out_ext = p->seq + c->seq_offset;
            if (out_ext > highest) highest = out_ext;
            int len = write_packet(c, p, bufs[k], (uint16_t)(out_ext & 0xFFFF));
            if (len < 0) continue;
            if (srtp_protect_ptr(c->ctx, bufs[k], &len) != 0) {
                n_protect_failed++; /* e.g. an index libsrtp considers replayed */
                continue;
            }
            iovs[k].iov_base = bufs[k];
            iovs[k].iov_len = (size_t)len;
            slot_pkt[k] = (int)i;
            k++;
        }
        int done = send_packets(c, k); /* packets handed over, in order */
        n_dropped += (unsigned long long)(k - done);
        for (int j = 0; j < done; j++) {
            Pkt *p = &pkts[slot_pkt[j]];
            sent_packets++;
            sent_bytes += p->plen;
            last = p->mp;
        }
    }
    n_sent += (unsigned long long)sent_packets;
    /* write back what the Python path would have left */
    NumbersObject *nums = c->nums;
    nums->highest_out = highest;
    if (sent_packets) {
        nums->packets += sent_packets;
        nums->bytes += sent_bytes;
        Py_INCREF(last);
        Py_SETREF(nums->last, last);
    }
    return 0;
}

static PyObject *fanout_forward(PyObject *self, PyObject *args) {
    PyObject *batch, *consumers;
    if (!PyArg_ParseTuple(args, "O!O!:forward", &PyList_Type, &batch, &PyTuple_Type, &consumers))
        return NULL;
    if (srtp_protect_ptr == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_fanout.setup() was not called");
        return NULL;
    }
    n_calls++;
    Py_ssize_t n = PyList_GET_SIZE(batch);
    Py_ssize_t nc = PyTuple_GET_SIZE(consumers);
    PyObject *rest = NULL; /* consumers left to Python, made on the first one */
    if (n == 0) return PyTuple_New(0);
    Pkt stack_pkts[CHUNK];
    Pkt *pkts = n <= CHUNK ? stack_pkts : PyMem_Malloc(sizeof(Pkt) * (size_t)n);
    if (pkts == NULL) return PyErr_NoMemory();
    if (read_packets(batch, pkts, n) < 0) {
        /* not MediaPackets as expected: everything to Python */
        PyErr_Clear();
        if (pkts != stack_pkts) PyMem_Free(pkts);
        Py_INCREF(consumers);
        return consumers;
    }
    for (Py_ssize_t i = 0; i < nc; i++) {
        PyObject *co = PyTuple_GET_ITEM(consumers, i);
        int python = 1;
        if ((PyObject *)Py_TYPE(co) == consumer_type) {
            int paused = get_truth(co, s_paused);
            if (paused == 1) continue; /* Consumer.forward returns at once */
            if (paused == 0) {
                Cons c;
                int r = read_consumer(co, &c);
                if (r == 0) python = send_consumer(co, &c, pkts, n) < 0;
                cons_release(&c);
            }
            if (PyErr_Occurred()) PyErr_Clear();
        }
        if (python) {
            if (rest == NULL && (rest = PyList_New(0)) == NULL) break;
            if (PyList_Append(rest, co) < 0) break;
        }
    }
    if (pkts != stack_pkts) PyMem_Free(pkts);
    if (PyErr_Occurred()) {
        Py_XDECREF(rest);
        return NULL;
    }
    if (rest == NULL) return PyTuple_New(0);
    PyObject *t = PyList_AsTuple(rest);
    Py_DECREF(rest);
    return t;
}

static PyObject *fanout_setup(PyObject *self, PyObject *args) {
    unsigned long long protect;
    PyObject *ctype, *state;
    if (!PyArg_ParseTuple(args, "KOO:setup", &protect, &ctype, &state)) return NULL;
    if (protect == 0) {
        PyErr_SetString(PyExc_ValueError, "srtp_protect address is 0");
        return NULL;
    }
    srtp_protect_ptr = (protect_fn)(uintptr_t)protect;
    Py_INCREF(ctype);
    Py_XSETREF(consumer_type, ctype);
    Py_INCREF(state);
    Py_XSETREF(connected, state);
    Py_RETURN_NONE;
}

/* The header the native path writes for one packet and consumer (tests compare it with
 * Consumer._write); no SRTP, no send. */
static PyObject *fanout_rewrite(PyObject *self, PyObject *args) {
    PyObject *consumer, *mp, *list;
    if (!PyArg_ParseTuple(args, "OO:rewrite", &consumer, &mp)) return NULL;
    Cons c;
    memset(&c, 0, sizeof(c));
    Pkt p;
    list = PyList_New(1);
    if (list == NULL) return NULL;
    Py_INCREF(mp);
    PyList_SET_ITEM(list, 0, mp);
    PyObject *result = NULL;
    if (read_packets(list, &p, 1) < 0) goto done;
    PyObject *nums = PyObject_GetAttr(consumer, s_n);
    if (nums == NULL) goto done;
    if (Py_TYPE(nums) != &NumbersType) {
        Py_DECREF(nums);
        PyErr_SetString(PyExc_TypeError, "the consumer's _n is not a _fanout.Numbers");
        goto done;
    }
    c.nums = (NumbersObject *)nums; /* released with c */
    c.seq_offset = c.nums->seq_offset;
    c.ts_offset = c.nums->ts_offset;
    int r = read_layout(consumer, &c);
    if (r != 0) {
        if (r > 0) PyErr_SetString(PyExc_ValueError, "no usable _native_layout");
        goto done;
    }
    unsigned char buf[SLOT_SIZE];
    int len = write_packet(&c, &p, buf, (uint16_t)((p.seq + c.seq_offset) & 0xFFFF));
    if (len < 0) {
        PyErr_SetString(PyExc_ValueError, "packet does not fit");
        goto done;
    }
    result = PyBytes_FromStringAndSize((const char *)buf, len);
done:
    cons_release(&c);
    Py_DECREF(list);
    return result;
}

static PyObject *fanout_counters(PyObject *self, PyObject *noargs) {
    return Py_BuildValue("{sKsKsKsKsKsKsisKsKsKsKsK}", "sent", n_sent, "dropped", n_dropped,
                         "protect_failed", n_protect_failed, "calls", n_calls, "gso_failed",
                         n_gso_failed, "refused", n_refused, "gso", gso_enabled, "rx_parsed",
                         n_rx_parsed, "rx_declined", n_rx_declined, "rx_refused",
                         n_rx_refused, "rtcp_parsed", n_rtcp_parsed, "rtcp_declined",
                         n_rtcp_declined);
}

static PyObject *fanout_set_gso(PyObject *self, PyObject *arg) {
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    gso_enabled = on;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ receive
 *
 * A publisher's SRTP and SRTCP datagrams, unprotected with libsrtp's srtp_unprotect /
 * srtp_unprotect_rtcp (the functions pylibsrtp loaded, passed in as addresses by
 * setup_receive()) on a stack buffer, and an RTP packet's header read into aiortc's own
 * RtpPacket and HeaderExtensions, set attribute by attribute in the order their __init__
 * sets them: what pylibsrtp's Session.unprotect followed by aiortc's RtpPacket.parse
 * returns, without the Python parse, its generator and struct calls, and pylibsrtp's
 * per-call buffer copies. Only the common shape is read here: version 2, no CSRC, no
 * header extension or a one-byte one (0xBEDE) whose known elements have the sizes aiortc
 * unpacks, valid padding, decodable MID/RID. Anything else is handed back as the
 * unprotected bytes for aiortc to parse (and to raise what it raises). The Python path,
 * aiortc's, is the twin: tests compare the two on many packets. */

typedef int (*unprotect_fn)(void *ctx, void *hdr, int *len);

static unprotect_fn srtp_unprotect_ptr = NULL, srtp_unprotect_rtcp_ptr = NULL;
static PyObject *rtp_packet_type = NULL, *header_extensions_type = NULL;
static PyObject *empty_tuple = NULL;
static PyObject *s_version, *s_payload_type, *s_sequence_number, *s_ssrc, *s_csrc,
    *s_extensions, *s_padding_size, *s_mid, *s_repaired_rtp_stream_id, *s_rtp_stream_id,
    *s_transmission_offset, *s_transport_sequence_number;

#define RX_MAX 1500 /* pylibsrtp's Session buffer */
#define RX_SLOT (RX_MAX + 4 + 16 + 128)

enum { X_MID, X_RRID, X_RID, X_AST, X_TOFFSET, X_LEVEL, X_TWCC, X_COUNT };

/* the extension ids aiortc's HeaderExtensionsMap keeps (its __ids), -1 for None */
static int read_ids(PyObject *ids, int *out) {
    static PyObject **names[X_COUNT] = {&s_mid, &s_repaired_rtp_stream_id, &s_rtp_stream_id,
                                        &s_abs_send_time, &s_transmission_offset,
                                        &s_audio_level, &s_transport_sequence_number};
    for (int i = 0; i < X_COUNT; i++) {
        PyObject *v = PyObject_GetAttr(ids, *names[i]);
        if (v == NULL) return -1;
        if (v == Py_None) {
            out[i] = -1;
        } else {
            long id = PyLong_AsLong(v);
            if (id == -1 && PyErr_Occurred()) {
                Py_DECREF(v);
                return -1;
            }
            out[i] = (int)id;
        }
        Py_DECREF(v);
    }
    return 0;
}

/* 1: an RtpPacket in *out; 0: declined (aiortc parses it); -1: error set */
static int parse_rtp(const unsigned char *d, Py_ssize_t n, PyObject *ids, PyObject **out) {
    /* the values of HeaderExtensions, in its __init__ order */
    PyObject *vals[X_COUNT] = {NULL};
    /* HeaderExtensions' field order: abs_send_time, audio_level, mid, repaired, rid,
     * toffset, twcc */
    static const int order[X_COUNT] = {X_AST, X_LEVEL, X_MID, X_RRID, X_RID, X_TOFFSET, X_TWCC};
    static PyObject **order_names[X_COUNT] = {&s_abs_send_time, &s_audio_level, &s_mid,
                                              &s_repaired_rtp_stream_id, &s_rtp_stream_id,
                                              &s_transmission_offset,
                                              &s_transport_sequence_number};
    PyObject *ext = NULL, *pkt = NULL, *payload = NULL, *csrc = NULL;
    int rc = 0;
    *out = NULL;
    if (n < 12 || (d[0] >> 6) != 2 || (d[0] & 0x0F)) return 0; /* CSRCs: aiortc's */
    int padding = d[0] & 0x20;
    Py_ssize_t pos = 12;
    if (d[0] & 0x10) {
        if (n < pos + 4) return 0;
        unsigned profile = ((unsigned)d[pos] << 8) | d[pos + 1];
        Py_ssize_t elen = (((Py_ssize_t)d[pos + 2] << 8) | d[pos + 3]) * 4;
        pos += 4;
        if (n < pos + elen || profile != 0xBEDE) return 0;
        int idv[X_COUNT];
        if (read_ids(ids, idv) < 0) return -1;
        Py_ssize_t p = pos, end = pos + elen;
        while (p < end) {
            if (d[p] == 0) {
                p++;
                continue;
            }
            int xid = d[p] >> 4, xlen = (d[p] & 0x0F) + 1;
            p++;
            if (end < p + xlen) goto decline; /* aiortc: "value is truncated" */
            const unsigned char *v = d + p;
            PyObject *val = NULL;
            int slot = -1;
            /* aiortc's elif chain, in its order */
            if (xid == idv[X_MID]) {
                slot = X_MID;
                val = PyUnicode_DecodeUTF8((const char *)v, xlen, NULL);
            } else if (xid == idv[X_RRID]) {
                slot = X_RRID;
                val = PyUnicode_DecodeASCII((const char *)v, xlen, NULL);
            } else if (xid == idv[X_RID]) {
                slot = X_RID;
                val = PyUnicode_DecodeASCII((const char *)v, xlen, NULL);
            } else if (xid == idv[X_AST]) {
                if (xlen != 3) goto decline;
                slot = X_AST;
                val = PyLong_FromUnsignedLong(((unsigned long)v[0] << 16) | (v[1] << 8) | v[2]);
            } else if (xid == idv[X_TOFFSET]) {
                if (xlen != 3) goto decline;
                slot = X_TOFFSET;
                int32_t t = (int32_t)(((uint32_t)v[0] << 24) | ((uint32_t)v[1] << 16) |
                                      ((uint32_t)v[2] << 8));
                val = PyLong_FromLong((long)(t >> 8));
            } else if (xid == idv[X_LEVEL]) {
                if (xlen != 1) goto decline;
                slot = X_LEVEL;
                val = Py_BuildValue("(Oi)", (v[0] & 0x80) ? Py_True : Py_False, v[0] & 0x7F);
            } else if (xid == idv[X_TWCC]) {
                if (xlen != 2) goto decline;
                slot = X_TWCC;
                val = PyLong_FromLong(((long)v[0] << 8) | v[1]);
            }
            if (slot >= 0) {
                if (val == NULL) {
                    if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                        PyErr_Clear();
                        goto decline;
                    }
                    rc = -1;
                    goto done;
                }
                Py_XSETREF(vals[slot], val);
            }
            p += xlen;
        }
        pos = end;
    }
    Py_ssize_t stop = n;
    int padding_size = 0;
    if (padding) {
        padding_size = d[n - 1];
        if (!padding_size || padding_size > n - pos) goto decline;
        stop = n - padding_size;
    }
    ext = ((PyTypeObject *)header_extensions_type)
              ->tp_new((PyTypeObject *)header_extensions_type, empty_tuple, NULL);
    if (ext == NULL) goto error;
    for (int i = 0; i < X_COUNT; i++) {
        PyObject *v = vals[order[i]];
        if (PyObject_SetAttr(ext, *order_names[i], v ? v : Py_None) < 0) goto error;
    }
    pkt = ((PyTypeObject *)rtp_packet_type)->tp_new((PyTypeObject *)rtp_packet_type,
                                                    empty_tuple, NULL);
    if (pkt == NULL) goto error;
    if ((csrc = PyList_New(0)) == NULL) goto error;
    if ((payload = PyBytes_FromStringAndSize((const char *)d + pos, stop - pos)) == NULL)
        goto error;
    /* RtpPacket.__init__'s order */
    PyObject *fields[10][2] = {
        {s_version, PyLong_FromLong(2)},
        {s_marker, PyLong_FromLong(d[1] >> 7)},
        {s_payload_type, PyLong_FromLong(d[1] & 0x7F)},
        {s_sequence_number, PyLong_FromLong(((long)d[2] << 8) | d[3])},
        {s_timestamp, PyLong_FromUnsignedLong(((unsigned long)d[4] << 24) |
                                              ((unsigned long)d[5] << 16) | (d[6] << 8) | d[7])},
        {s_ssrc, PyLong_FromUnsignedLong(((unsigned long)d[8] << 24) |
                                         ((unsigned long)d[9] << 16) | (d[10] << 8) | d[11])},
        {s_csrc, csrc},
        {s_extensions, ext},
        {s_payload, payload},
        {s_padding_size, PyLong_FromLong(padding_size)},
    };
    csrc = ext = payload = NULL; /* owned by fields now */
    int bad = 0;
    for (int i = 0; i < 10; i++) {
        if (fields[i][1] == NULL || (!bad && PyObject_SetAttr(pkt, fields[i][0], fields[i][1]) < 0))
            bad = 1;
    }
    for (int i = 0; i < 10; i++) Py_XDECREF(fields[i][1]);
    if (bad) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto error;
    }
    *out = pkt;
    pkt = NULL;
    rc = 1;
    goto done;
decline:
    rc = 0;
    goto done;
error:
    rc = -1;
done:
    for (int i = 0; i < X_COUNT; i++) Py_XDECREF(vals[i]);
    Py_XDECREF(ext);
    Py_XDECREF(pkt);
    Py_XDECREF(payload);
    Py_XDECREF(csrc);
    return rc;
}

static int receive_ready(void) {
    if (srtp_unprotect_ptr == NULL || rtp_packet_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_fanout.setup_receive() was not called");
        return 0;
    }
    return 1;
}

/* parse_rtp(data, ids) -> RtpPacket, or None where aiortc's parse is left to do it */
static PyObject *fanout_parse_rtp(PyObject *self, PyObject *args) {
    Py_buffer b;
    PyObject *ids, *pkt;
    if (!PyArg_ParseTuple(args, "y*O:parse_rtp", &b, &ids)) return NULL;
    if (!receive_ready()) {
        PyBuffer_Release(&b);
        return NULL;
    }
    int r = parse_rtp(b.buf, b.len, ids, &pkt);
    PyBuffer_Release(&b);
    if (r < 0) return NULL;
    if (r == 0) Py_RETURN_NONE;
    return pkt;
}

static int unprotect_into(PyObject *data, unsigned char *buf, int *len, unprotect_fn fn,
                          unsigned long long ctx) {
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "packet must be bytes");
        return -1;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    if (n > RX_MAX) {
        PyErr_SetString(PyExc_ValueError, "packet is too long");
        return -1;
    }
    if (ctx == 0) {
        PyErr_SetString(PyExc_ValueError, "libsrtp context address is 0");
        return -1;
    }
    memcpy(buf, PyBytes_AS_STRING(data), (size_t)n);
    *len = (int)n;
    if (fn((void *)(uintptr_t)ctx, buf, len) != 0) {
        n_rx_refused++; /* pylibsrtp would raise pylibsrtp.Error: dropped */
        return 0;
    }
    return 1;
}

/* unprotect_rtp(ctx, data, ids) -> RtpPacket (parsed here), bytes (unprotected, for aiortc
 * to parse) or None (libsrtp refused it) */
static PyObject *fanout_unprotect_rtp(PyObject *self, PyObject *args) {
    unsigned long long ctx;
    PyObject *data, *ids, *pkt;
    if (!PyArg_ParseTuple(args, "KOO:unprotect_rtp", &ctx, &data, &ids)) return NULL;
    if (!receive_ready()) return NULL;
    unsigned char buf[RX_SLOT];
    int len;
    int r = unprotect_into(data, buf, &len, srtp_unprotect_ptr, ctx);
    if (r < 0) return NULL;
    if (r == 0) Py_RETURN_NONE;
    r = parse_rtp(buf, len, ids, &pkt);
    if (r < 0) return NULL;
    if (r == 1) {
        n_rx_parsed++;
        return pkt;
    }
    n_rx_declined++;
    return PyBytes_FromStringAndSize((const char *)buf, len);
}

/* unprotect_rtcp(ctx, data) -> bytes, or None (libsrtp refused it) */
static PyObject *fanout_unprotect_rtcp(PyObject *self, PyObject *args) {
    unsigned long long ctx;
    PyObject *data;
    if (!PyArg_ParseTuple(args, "KO:unprotect_rtcp", &ctx, &data)) return NULL;
    if (!receive_ready()) return NULL;
    unsigned char buf[RX_SLOT];
    int len;
    int r = unprotect_into(data, buf, &len, srtp_unprotect_rtcp_ptr, ctx);
    if (r < 0) return NULL;
    if (r == 0) Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)buf, len);
}

static PyObject *fanout_setup_receive(PyObject *self, PyObject *args) {
    unsigned long long unprotect, unprotect_rtcp;
    PyObject *ptype, *etype;
    if (!PyArg_ParseTuple(args, "KKO!O!:setup_receive", &unprotect, &unprotect_rtcp,
                          &PyType_Type, &ptype, &PyType_Type, &etype))
        return NULL;
    if (unprotect == 0 || unprotect_rtcp == 0) {
        PyErr_SetString(PyExc_ValueError, "srtp_unprotect address is 0");
        return NULL;
    }
    srtp_unprotect_ptr = (unprotect_fn)(uintptr_t)unprotect;
    srtp_unprotect_rtcp_ptr = (unprotect_fn)(uintptr_t)unprotect_rtcp;
    Py_INCREF(ptype);
    Py_XSETREF(rtp_packet_type, ptype);
    Py_INCREF(etype);
    Py_XSETREF(header_extensions_type, etype);
    Py_RETURN_NONE;
}

/* A subscriber's RTCP, read into aiortc's own packet classes: what RtcpPacket.parse returns
 * for a compound packet made of receiver reports (RR), payload-specific feedback (PSFB:
 * PLI, FIR, REMB) and transport-layer feedback (RTPFB: NACK), each dataclass set field by
 * field in its __init__ order. A compound packet with anything else in it (SR, SDES, BYE,
 * other types, padding) or anything aiortc would reject is declined (None): aiortc parses
 * it, and raises what it raises. */

static PyObject *rtcp_rr_type = NULL, *rtcp_info_type = NULL, *rtcp_psfb_type = NULL,
                *rtcp_rtpfb_type = NULL;
static PyObject *s_reports, *s_fraction_lost, *s_packets_lost, *s_highest_sequence,
    *s_jitter, *s_lsr, *s_dlsr, *s_fmt, *s_media_ssrc, *s_fci, *s_lost;

#define RD32(p) (((uint32_t)(p)[0] << 24) | ((uint32_t)(p)[1] << 16) | ((uint32_t)(p)[2] << 8) | (p)[3])

static PyObject *new_of(PyObject *type) {
    return ((PyTypeObject *)type)->tp_new((PyTypeObject *)type, empty_tuple, NULL);
}

/* set name = value on obj, stealing value; -1 on error */
static int set_steal(PyObject *obj, PyObject *name, PyObject *value) {
    if (value == NULL) return -1;
    int r = PyObject_SetAttr(obj, name, value);
    Py_DECREF(value);
    return r;
}

static PyObject *read_rr(const unsigned char *d, Py_ssize_t len, int count) {
    if (len != 4 + 24 * (Py_ssize_t)count) return NULL; /* declined (no error set) */
    PyObject *reports = PyList_New(count);
    if (reports == NULL) return NULL;
    for (int i = 0; i < count; i++) {
        const unsigned char *b = d + 4 + 24 * i;
        PyObject *info = new_of(rtcp_info_type);
        if (info == NULL) goto fail;
        PyList_SET_ITEM(reports, i, info);
        int32_t lost = (int32_t)(((uint32_t)b[5] << 24) | ((uint32_t)b[6] << 16) |
                                 ((uint32_t)b[7] << 8)) >> 8;
        if (set_steal(info, s_ssrc, PyLong_FromUnsignedLong(RD32(b))) < 0 ||
            set_steal(info, s_fraction_lost, PyLong_FromLong(b[4])) < 0 ||
            set_steal(info, s_packets_lost, PyLong_FromLong(lost)) < 0 ||
            set_steal(info, s_highest_sequence, PyLong_FromUnsignedLong(RD32(b + 8))) < 0 ||
            set_steal(info, s_jitter, PyLong_FromUnsignedLong(RD32(b + 12))) < 0 ||
            set_steal(info, s_lsr, PyLong_FromUnsignedLong(RD32(b + 16))) < 0 ||
            set_steal(info, s_dlsr, PyLong_FromUnsignedLong(RD32(b + 20))) < 0)
            goto fail;
    }
    PyObject *rr = new_of(rtcp_rr_type);
    if (rr == NULL) goto fail;
    if (set_steal(rr, s_ssrc, PyLong_FromUnsignedLong(RD32(d))) < 0 ||
        PyObject_SetAttr(rr, s_reports, reports) < 0) {
        Py_DECREF(rr);
        goto fail;
    }
    Py_DECREF(reports);
    return rr;
fail:
    Py_DECREF(reports);
    return NULL;
}

static PyObject *read_psfb(const unsigned char *d, Py_ssize_t len, int fmt) {
    if (len < 8) return NULL;
    PyObject *p = new_of(rtcp_psfb_type);
    if (p == NULL) return NULL;
    if (set_steal(p, s_fmt, PyLong_FromLong(fmt)) < 0 ||
        set_steal(p, s_ssrc, PyLong_FromUnsignedLong(RD32(d))) < 0 ||
        set_steal(p, s_media_ssrc, PyLong_FromUnsignedLong(RD32(d + 4))) < 0 ||
        set_steal(p, s_fci, PyBytes_FromStringAndSize((const char *)d + 8, len - 8)) < 0) {
        Py_DECREF(p);
        return NULL;
    }
    return p;
}

static PyObject *read_rtpfb(const unsigned char *d, Py_ssize_t len, int fmt) {
    if (len < 8 || len % 4) return NULL;
    PyObject *lost = PyList_New(0);
    if (lost == NULL) return NULL;
    for (Py_ssize_t pos = 8; pos < len; pos += 4) {
        unsigned pid = ((unsigned)d[pos] << 8) | d[pos + 1];
        unsigned blp = ((unsigned)d[pos + 2] << 8) | d[pos + 3];
        PyObject *v = PyLong_FromLong(pid);
        if (v == NULL || PyList_Append(lost, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(lost);
            return NULL;
        }
        Py_DECREF(v);
        for (int k = 0; k < 16; k++) {
            if ((blp >> k) & 1) {
                v = PyLong_FromLong(pid + k + 1); /* aiortc: pid + d + 1, unwrapped */
                if (v == NULL || PyList_Append(lost, v) < 0) {
                    Py_XDECREF(v);
                    Py_DECREF(lost);
                    return NULL;
                }
                Py_DECREF(v);
            }
        }
    }
    PyObject *p = new_of(rtcp_rtpfb_type);
    if (p == NULL) {
        Py_DECREF(lost);
        return NULL;
    }
    if (set_steal(p, s_fmt, PyLong_FromLong(fmt)) < 0 ||
        set_steal(p, s_ssrc, PyLong_FromUnsignedLong(RD32(d))) < 0 ||
        set_steal(p, s_media_ssrc, PyLong_FromUnsignedLong(RD32(d + 4))) < 0 ||
        set_steal(p, s_lost, lost) < 0) {
        Py_DECREF(p);
        return NULL;
    }
    return p;
}

/* parse_rtcp(data) -> list of aiortc RTCP packets, or None where aiortc's parse is left to
 * do it */
static PyObject *fanout_parse_rtcp(PyObject *self, PyObject *arg) {
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "parse_rtcp() takes bytes");
        return NULL;
    }
    if (rtcp_rr_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_fanout.setup_rtcp() was not called");
        return NULL;
    }
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(arg);
    Py_ssize_t n = PyBytes_GET_SIZE(arg), pos = 0;
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    while (pos < n) {
        if (n < pos + 4) goto decline;
        int b0 = d[pos], type = d[pos + 1];
        Py_ssize_t length = (((Py_ssize_t)d[pos + 2] << 8) | d[pos + 3]) * 4;
        if ((b0 >> 6) != 2 || (b0 & 0x20)) goto decline; /* a bad version; padding */
        pos += 4;
        if (n < pos + length) goto decline;
        PyObject *p;
        int count = b0 & 0x1F;
        if (type == 201) {
            p = read_rr(d + pos, length, count);
        } else if (type == 206) {
            p = read_psfb(d + pos, length, count);
        } else if (type == 205) {
            p = read_rtpfb(d + pos, length, count);
        } else {
            goto decline; /* SR, SDES, BYE, others: aiortc's */
        }
        if (p == NULL) {
            if (PyErr_Occurred()) {
                Py_DECREF(out);
                return NULL;
            }
            goto decline;
        }
        int r = PyList_Append(out, p);
        Py_DECREF(p);
        if (r < 0) {
            Py_DECREF(out);
            return NULL;
        }
        pos += length;
    }
    n_rtcp_parsed++;
    return out;
decline:
    n_rtcp_declined++;
    Py_DECREF(out);
    Py_RETURN_NONE;
}

static PyObject *fanout_setup_rtcp(PyObject *self, PyObject *args) {
    PyObject *rr, *info, *psfb, *rtpfb;
    if (!PyArg_ParseTuple(args, "O!O!O!O!:setup_rtcp", &PyType_Type, &rr, &PyType_Type, &info,
                          &PyType_Type, &psfb, &PyType_Type, &rtpfb))
        return NULL;
    Py_INCREF(rr);
    Py_XSETREF(rtcp_rr_type, rr);
    Py_INCREF(info);
    Py_XSETREF(rtcp_info_type, info);
    Py_INCREF(psfb);
    Py_XSETREF(rtcp_psfb_type, psfb);
    Py_INCREF(rtpfb);
    Py_XSETREF(rtcp_rtpfb_type, rtpfb);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"forward", fanout_forward, METH_VARARGS,
     "forward(batch, consumers) -> consumers left to the Python path"},
    {"setup", fanout_setup, METH_VARARGS,
     "setup(srtp_protect_address, consumer_type, connected_state)"},
    {"rewrite", fanout_rewrite, METH_VARARGS,
     "rewrite(consumer, packet) -> the unprotected packet the native path would send"},
    {"counters", fanout_counters, METH_NOARGS, "counters() -> sent/dropped/... since start"},
    {"set_gso", fanout_set_gso, METH_O, "set_gso(on): send runs of equal packets with UDP GSO"},
    {"setup_receive", fanout_setup_receive, METH_VARARGS,
     "setup_receive(srtp_unprotect_address, srtp_unprotect_rtcp_address, RtpPacket, "
     "HeaderExtensions)"},
    {"unprotect_rtp", fanout_unprotect_rtp, METH_VARARGS,
     "unprotect_rtp(ctx, data, ids) -> RtpPacket, bytes for aiortc to parse, or None"},
    {"unprotect_rtcp", fanout_unprotect_rtcp, METH_VARARGS,
     "unprotect_rtcp(ctx, data) -> bytes, or None"},
    {"setup_rtcp", fanout_setup_rtcp, METH_VARARGS,
     "setup_rtcp(RtcpRrPacket, RtcpReceiverInfo, RtcpPsfbPacket, RtcpRtpfbPacket)"},
    {"parse_rtcp", fanout_parse_rtcp, METH_O,
     "parse_rtcp(data) -> [aiortc RTCP packets], or None where aiortc's parse is left to do it"},
    {"parse_rtp", fanout_parse_rtp, METH_VARARGS,
     "parse_rtp(data, ids) -> RtpPacket, or None where aiortc's parse is left to do it"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fanout", "Native fan-out of media packets (see _fanout.c).", -1,
    methods,
};

#define INTERN(var, name)                                  \
    do {                                                   \
        if ((var = PyUnicode_InternFromString(name)) == NULL) return NULL; \
    } while (0)

PyMODINIT_FUNC PyInit__fanout(void) {
    INTERN(s_paused, "paused");
    INTERN(s_sel, "_sel");
    INTERN(s_need_keyframe, "_need_keyframe");
    INTERN(s_started, "_started");
    INTERN(s_sink, "_sink");
    INTERN(s_dtls, "_dtls");
    INTERN(s_state, "_state");
    INTERN(s_tx_srtp, "_tx_srtp");
    INTERN(s_session, "_session");
    INTERN(s_nominated, "_nominated");
    INTERN(s_pair, "_pair");
    INTERN(s_n, "_n");
    INTERN(s_target, "_target");
    INTERN(s_native_layout, "_native_layout");
    INTERN(s_seq, "seq");
    INTERN(s_timestamp, "timestamp");
    INTERN(s_marker, "marker");
    INTERN(s_payload, "payload");
    INTERN(s_audio_level, "audio_level");
    INTERN(s_abs_send_time, "abs_send_time");
    INTERN(s_version, "version");
    INTERN(s_payload_type, "payload_type");
    INTERN(s_sequence_number, "sequence_number");
    INTERN(s_ssrc, "ssrc");
    INTERN(s_csrc, "csrc");
    INTERN(s_extensions, "extensions");
    INTERN(s_padding_size, "padding_size");
    INTERN(s_mid, "mid");
    INTERN(s_repaired_rtp_stream_id, "repaired_rtp_stream_id");
    INTERN(s_rtp_stream_id, "rtp_stream_id");
    INTERN(s_transmission_offset, "transmission_offset");
    INTERN(s_transport_sequence_number, "transport_sequence_number");
    INTERN(s_reports, "reports");
    INTERN(s_fraction_lost, "fraction_lost");
    INTERN(s_packets_lost, "packets_lost");
    INTERN(s_highest_sequence, "highest_sequence");
    INTERN(s_jitter, "jitter");
    INTERN(s_lsr, "lsr");
    INTERN(s_dlsr, "dlsr");
    INTERN(s_fmt, "fmt");
    INTERN(s_media_ssrc, "media_ssrc");
    INTERN(s_fci, "fci");
    INTERN(s_lost, "lost");
    if ((empty_tuple = PyTuple_New(0)) == NULL) return NULL;
    if ((one = PyLong_FromLong(1)) == NULL) return NULL;
    if (PyType_Ready(&NumbersType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&NumbersType);
    if (PyModule_AddObject(m, "Numbers", (PyObject *)&NumbersType) < 0) {
        Py_DECREF(&NumbersType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
