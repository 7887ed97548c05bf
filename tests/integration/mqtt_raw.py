"""Hand-built MQTT 3.1.1 / 5.0 packets and a blocking socket client.

The library clients (paho, mosquitto) refuse to send broken packets and hide
what is on the wire, so the tests that need exact bytes - bad input, flow
control, reason codes, DUP flags - use this instead. Builders return bytes
and never validate: a test can make any packet it wants, legal or not.
"""

import socket
import ssl
import struct
import time

# Packet types (fixed header, high nibble).
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP = 8, 9, 10, 11, 12, 13
DISCONNECT, AUTH = 14, 15

PACKET_NAMES = {
    1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
    7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
    12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH",
}

# MQTT 5 reason codes the tests look for.
RC_SUCCESS = 0x00
RC_DISCONNECT_WITH_WILL = 0x04
RC_NO_SUBSCRIPTION_EXISTED = 0x11
RC_UNSPECIFIED = 0x80
RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_NOT_AUTHORIZED = 0x87
RC_KEEP_ALIVE_TIMEOUT = 0x8D
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_FILTER_INVALID = 0x8F
RC_TOPIC_NAME_INVALID = 0x90
RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93
RC_TOPIC_ALIAS_INVALID = 0x94
RC_PACKET_TOO_LARGE = 0x95
RC_UNSUPPORTED_VERSION = 0x84

# MQTT 5 properties: name -> (identifier, type).
PROPS = {
    "payload_format": (0x01, "byte"),
    "message_expiry": (0x02, "u32"),
    "content_type": (0x03, "str"),
    "response_topic": (0x08, "str"),
    "correlation_data": (0x09, "bin"),
    "sub_id": (0x0B, "vbi"),
    "session_expiry": (0x11, "u32"),
    "assigned_client_id": (0x12, "str"),
    "server_keep_alive": (0x13, "u16"),
    "auth_method": (0x15, "str"),
    "auth_data": (0x16, "bin"),
    "request_problem_info": (0x17, "byte"),
    "will_delay": (0x18, "u32"),
    "request_response_info": (0x19, "byte"),
    "response_info": (0x1A, "str"),
    "server_reference": (0x1C, "str"),
    "reason_string": (0x1F, "str"),
    "receive_maximum": (0x21, "u16"),
    "topic_alias_maximum": (0x22, "u16"),
    "topic_alias": (0x23, "u16"),
    "maximum_qos": (0x24, "byte"),
    "retain_available": (0x25, "byte"),
    "user": (0x26, "pair"),
    "maximum_packet_size": (0x27, "u32"),
    "wildcard_sub_available": (0x28, "byte"),
    "sub_id_available": (0x29, "byte"),
    "shared_sub_available": (0x2A, "byte"),
}
PROP_BY_ID = {ident: (name, kind) for name, (ident, kind) in PROPS.items()}


class ConnectionClosed(Exception):
    """The peer closed the connection (EOF or reset)."""


class MalformedResponse(Exception):
    """The server sent bytes that do not parse as MQTT."""



def vbi(n):
    """Variable Byte Integer."""
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        if n:
            byte |= 0x80
        out.append(byte)
        if not n:
            return bytes(out)


def _raw(s):
    return s.encode() if isinstance(s, str) else bytes(s)


def string(s):
    """A two-byte-length-prefixed string; bytes are sent as they are."""
    b = _raw(s)
    return struct.pack("!H", len(b)) + b


def encode_props(props):
    """Properties with their length. `props` is None, a dict {name: value}
    ('user' takes a list of (key, value) pairs, 'sub_id' an int or a list),
    or a list of (name, value) pairs, which may repeat a property."""
    if props is None:
        return b"\x00"
    items = props.items() if isinstance(props, dict) else props
    body = bytearray()
    for name, value in items:
        ident, kind = PROPS[name]
        values = value if (kind == "pair" or (name == "sub_id" and isinstance(value, list))) \
            else [value]
        for v in values:
            body += vbi(ident)
            if kind == "byte":
                body += struct.pack("!B", v)
            elif kind == "u16":
                body += struct.pack("!H", v)
            elif kind == "u32":
                body += struct.pack("!I", v)
            elif kind == "vbi":
                body += vbi(v)
            elif kind in ("str", "bin"):
                body += string(v)
            elif kind == "pair":
                body += string(v[0]) + string(v[1])
    return vbi(len(body)) + bytes(body)


def packet(ptype, flags, body):
    """A whole packet: fixed header, remaining length, body."""
    return bytes([(ptype << 4) | flags]) + vbi(len(body)) + bytes(body)


def connect(client_id="", version=5, clean=True, keepalive=60, props=None, will=None,
            username=None, password=None, proto_name=None, level=None, flags=None):
    """CONNECT. `will` is a dict: topic, payload, qos=0, retain=False,
    props=None (5.0). `flags` overrides the computed connect flags byte."""
    if level is None:
        level = {5: 5, 4: 4, 311: 4, 3: 3}[version]
    if proto_name is None:
        proto_name = "MQIsdp" if level == 3 else "MQTT"
    v5 = level == 5
    f = 0x02 if clean else 0
    if will:
        f |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
    if username is not None:
        f |= 0x80
    if password is not None:
        f |= 0x40
    if flags is not None:
        f = flags
    body = string(proto_name) + bytes([level, f]) + struct.pack("!H", keepalive)
    if v5:
        body += encode_props(props)
    body += string(client_id)
    if will:
        if v5:
            body += encode_props(will.get("props"))
        body += string(will["topic"]) + string(will.get("payload", b""))
    if username is not None:
        body += string(username)
    if password is not None:
        body += string(password)
    return packet(CONNECT, 0, body)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, packet_id=None, version=5,
            props=None, flags=None):
    """PUBLISH. `flags` overrides the low nibble (e.g. QoS 3)."""
    f = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    if flags is not None:
        f = flags
    body = string(topic)
    if qos > 0 or (flags is not None and (flags >> 1) & 3):
        body += struct.pack("!H", 1 if packet_id is None else packet_id)
    if version == 5:
        body += encode_props(props)
    body += _raw(payload)
    return packet(PUBLISH, f, body)


def ack(ptype, packet_id, version=5, reason=0, props=None):
    """PUBACK, PUBREC, PUBREL or PUBCOMP."""
    flags = 0x02 if ptype == PUBREL else 0
    body = struct.pack("!H", packet_id)
    if version == 5 and (reason or props):
        body += bytes([reason])
        if props:
            body += encode_props(props)
    return packet(ptype, flags, body)


def sub_options(qos=0, no_local=False, retain_as_published=False, retain_handling=0):
    return qos | (0x04 if no_local else 0) | (0x08 if retain_as_published else 0) \
        | (retain_handling << 4)


def subscribe(packet_id, filters, version=5, props=None, flags=0x02):
    """SUBSCRIBE. `filters`: a list of (filter, options byte) or of filters
    (QoS 0)."""
    parts = [struct.pack("!H", packet_id)]
    if version == 5:
        parts.append(encode_props(props))
    for item in filters:
        flt, opts = item if isinstance(item, tuple) else (item, 0)
        parts.append(string(flt) + bytes([opts]))
    return packet(SUBSCRIBE, flags, b"".join(parts))


def unsubscribe(packet_id, filters, version=5, props=None):
    parts = [struct.pack("!H", packet_id)]
    if version == 5:
        parts.append(encode_props(props))
    parts.extend(string(flt) for flt in filters)
    return packet(UNSUBSCRIBE, 0x02, b"".join(parts))


def pingreq():
    return packet(PINGREQ, 0, b"")


def disconnect(version=5, reason=0, props=None):
    if version != 5 or (reason == 0 and not props):
        return packet(DISCONNECT, 0, b"")
    body = bytes([reason])
    if props:
        body += encode_props(props)
    return packet(DISCONNECT, 0, body)



class Props(dict):
    """Decoded properties: {name: value}; 'user' is a list of (key, value)
    string pairs in wire order, 'sub_id' a list of identifiers."""


def decode_vbi(buf, pos):
    value, mult = 0, 1
    for i in range(4):
        if pos >= len(buf):
            raise MalformedResponse("truncated variable byte integer")
        byte = buf[pos]
        pos += 1
        value += (byte & 0x7F) * mult
        if not byte & 0x80:
            return value, pos
        mult *= 128
    raise MalformedResponse("variable byte integer longer than 4 bytes")


def _take(buf, pos, n):
    if pos + n > len(buf):
        raise MalformedResponse("truncated field")
    return bytes(buf[pos:pos + n]), pos + n


def _string(buf, pos):
    raw, pos = _take(buf, pos, 2)
    (n,) = struct.unpack("!H", raw)
    return _take(buf, pos, n)


def decode_props(buf, pos):
    length, pos = decode_vbi(buf, pos)
    end = pos + length
    if end > len(buf):
        raise MalformedResponse("property length past the packet")
    props = Props()
    while pos < end:
        ident, pos = decode_vbi(buf, pos)
        if ident not in PROP_BY_ID:
            raise MalformedResponse("unknown property 0x%02x" % ident)
        name, kind = PROP_BY_ID[ident]
        if kind == "byte":
            raw, pos = _take(buf, pos, 1)
            value = raw[0]
        elif kind == "u16":
            raw, pos = _take(buf, pos, 2)
            (value,) = struct.unpack("!H", raw)
        elif kind == "u32":
            raw, pos = _take(buf, pos, 4)
            (value,) = struct.unpack("!I", raw)
        elif kind == "vbi":
            value, pos = decode_vbi(buf, pos)
        elif kind == "bin":
            value, pos = _string(buf, pos)
        elif kind == "str":
            raw, pos = _string(buf, pos)
            value = raw.decode("utf-8")
        else:
            k, pos = _string(buf, pos)
            v, pos = _string(buf, pos)
            value = (k.decode("utf-8"), v.decode("utf-8"))
        if name == "user":
            props.setdefault("user", []).append(value)
        elif name == "sub_id":
            props.setdefault("sub_id", []).append(value)
        else:
            if name in props:
                raise MalformedResponse("property %s more than once" % name)
            props[name] = value
    return props, end


class Packet:
    """A packet from the server, decoded by type. Fields: type, name, flags,
    body and, depending on the type: session_present, reason, props, topic,
    payload, qos, retain, dup, packet_id, reasons."""

    def __init__(self, ptype, flags, body, version):
        self.type, self.flags, self.body = ptype, flags, bytes(body)
        self.name = PACKET_NAMES.get(ptype, "type %d" % ptype)
        self.props = Props()
        self.reason = 0
        v5 = version == 5
        b = self.body
        if ptype == CONNACK:
            if len(b) < 2:
                raise MalformedResponse("short CONNACK")
            self.session_present = bool(b[0] & 1)
            self.reason = b[1]
            if v5 and len(b) > 2:
                self.props, _ = decode_props(b, 2)
        elif ptype == PUBLISH:
            self.dup = bool(flags & 0x08)
            self.qos = (flags >> 1) & 3
            self.retain = bool(flags & 1)
            topic, pos = _string(b, 0)
            self.topic = topic.decode("utf-8")
            self.packet_id = None
            if self.qos:
                raw, pos = _take(b, pos, 2)
                (self.packet_id,) = struct.unpack("!H", raw)
            if v5:
                self.props, pos = decode_props(b, pos)
            self.payload = b[pos:]
        elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK, SUBACK):
            raw, pos = _take(b, 0, 2)
            (self.packet_id,) = struct.unpack("!H", raw)
            if ptype in (SUBACK, UNSUBACK):
                if v5:
                    self.props, pos = decode_props(b, pos)
                self.reasons = list(b[pos:])
            elif len(b) > 2:
                self.reason = b[2]
                if v5 and len(b) > 3:
                    self.props, _ = decode_props(b, 3)
        elif ptype == DISCONNECT:
            if len(b) >= 1:
                self.reason = b[0]
            if v5 and len(b) > 1:
                self.props, _ = decode_props(b, 1)

    def __repr__(self):
        extra = ""
        if self.type == PUBLISH:
            extra = " topic=%r qos=%d retain=%d dup=%d id=%s payload=%r" % (
                self.topic, self.qos, self.retain, self.dup, self.packet_id, self.payload[:40])
        elif self.type in (CONNACK, DISCONNECT, PUBACK, PUBREC, PUBREL, PUBCOMP):
            extra = " reason=0x%02x" % self.reason
        elif self.type in (SUBACK, UNSUBACK):
            extra = " reasons=%s" % ["0x%02x" % r for r in self.reasons]
        if self.props:
            extra += " props=%r" % dict(self.props)
        return "<%s%s>" % (self.name, extra)



class RawClient:
    """One blocking connection. Every wait has a timeout; none sleeps."""

    def __init__(self, port, host="127.0.0.1", version=5, ssl_context=None,
                 server_hostname="localhost", timeout=10.0):
        self.version = version
        self.timeout = timeout
        sock = socket.create_connection((host, port), timeout=timeout)
        self.local_port = sock.getsockname()[1]
        self.peer_name = "127.0.0.1:%d" % self.local_port
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname)
        self.sock = sock
        self.buf = bytearray()
        self.pending = []  # packets read ahead while waiting for another
        self.closed = False
        self.next_id = 1

    # -- bytes
    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the server")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from the server") from None
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError) as e:
            self.closed = True
            raise ConnectionClosed(str(e)) from None
        if not data:
            self.closed = True
            raise ConnectionClosed("EOF")
        self.buf += data

    def _try_parse(self):
        if len(self.buf) < 2:
            return None
        try:
            length, pos = decode_vbi(self.buf, 1)
        except MalformedResponse:
            if len(self.buf) >= 5:
                raise
            return None
        if len(self.buf) < pos + length:
            return None
        first = self.buf[0]
        body = self.buf[pos:pos + length]
        del self.buf[:pos + length]
        return Packet(first >> 4, first & 0x0F, body, self.version)

    def recv(self, timeout=None):
        """The next packet; TimeoutError if none comes, ConnectionClosed if
        the server closes first."""
        if self.pending:
            return self.pending.pop(0)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            p = self._try_parse()
            if p is not None:
                return p
            self._fill(deadline)

    def _recv_matching(self, match, timeout=None):
        """The first packet for which match(p) holds; the others read on the
        way are kept, in order, for later recv() calls."""
        for i, p in enumerate(self.pending):
            if match(p):
                return self.pending.pop(i)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            p = self._try_parse()
            if p is None:
                self._fill(deadline)
            elif match(p):
                return p
            else:
                self.pending.append(p)

    def expect(self, ptype, timeout=None):
        p = self.recv(timeout)
        assert p.type == ptype, "expected %s, got %r" % (PACKET_NAMES[ptype], p)
        return p

    def wait_closed(self, timeout=None):
        """Read until the server closes the connection; returns the packets
        that came before. AssertionError if it stays open."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        got, self.pending = self.pending, []
        while True:
            try:
                p = self._try_parse()
                if p is not None:
                    got.append(p)
                    continue
                self._fill(deadline)
            except ConnectionClosed:
                return got
            except TimeoutError:
                raise AssertionError("the server did not close the connection; got %r" % got)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True

    def abort(self):
        """Close without DISCONNECT, with a TCP reset where possible."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    # -- MQTT
    def new_id(self):
        pid = self.next_id
        self.next_id = self.next_id % 65535 + 1
        return pid

    def connect(self, client_id="", **kw):
        """CONNECT and its CONNACK."""
        kw.setdefault("version", self.version)
        self.send(connect(client_id, **kw))
        return self.expect(CONNACK)

    def subscribe(self, filters, props=None, packet_id=None):
        pid = packet_id or self.new_id()
        self.send(subscribe(pid, filters, self.version, props))
        return self._recv_matching(lambda p: p.type == SUBACK and p.packet_id == pid)

    def unsubscribe(self, filters, props=None):
        pid = self.new_id()
        self.send(unsubscribe(pid, filters, self.version, props))
        return self._recv_matching(lambda p: p.type == UNSUBACK and p.packet_id == pid)

    def publish(self, topic, payload=b"", qos=0, retain=False, props=None, wait=True):
        """PUBLISH; with wait, run the QoS 1/2 exchange and return the last
        acknowledgement (PUBACK or PUBCOMP), else the packet id."""
        pid = self.new_id() if qos else None
        self.send(publish(topic, payload, qos, retain, packet_id=pid, version=self.version,
                          props=props))
        if not wait or qos == 0:
            return pid
        return self.complete_publish(pid, qos)

    def complete_publish(self, pid, qos):
        """Wait for the acknowledgement of our PUBLISH `pid` (QoS 2: and
        send PUBREL); PUBLISHes arriving meanwhile are kept for recv()."""
        def is_ack(t):
            return lambda p: p.type == t and p.packet_id == pid
        if qos == 1:
            return self._recv_matching(is_ack(PUBACK))
        p = self._recv_matching(is_ack(PUBREC))
        if p.reason >= 0x80:
            return p
        self.send(ack(PUBREL, pid, self.version))
        return self._recv_matching(is_ack(PUBCOMP))

    def ack_publish(self, p):
        """Acknowledge a received PUBLISH (QoS 1: PUBACK; QoS 2: the whole
        PUBREC/PUBREL/PUBCOMP exchange)."""
        if p.qos == 1:
            self.send(ack(PUBACK, p.packet_id, self.version))
        elif p.qos == 2:
            self.send(ack(PUBREC, p.packet_id, self.version))
            self._recv_matching(lambda r: r.type == PUBREL and r.packet_id == p.packet_id)
            self.send(ack(PUBCOMP, p.packet_id, self.version))

    def recv_publish(self, timeout=None, auto_ack=True):
        p = self.expect(PUBLISH, timeout)
        if auto_ack:
            self.ack_publish(p)
        return p

    def ping(self, timeout=None):
        self.send(pingreq())
        return self._recv_matching(lambda p: p.type == PINGRESP, timeout)

    def disconnect(self, reason=0, props=None):
        self.send(disconnect(self.version, reason, props))
        self.close()
