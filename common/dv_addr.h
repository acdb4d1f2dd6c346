// dv_addr — what to tell a person whose ZeroMQ endpoint was refused.
//
// libzmq's own words for a bad endpoint ("Invalid argument", "No such
// device") name no cause. Every place that binds or connects a socket to an
// endpoint a person typed (the broker's --client/--workers, the worker's
// --broker, libdrover's drover_connect) appends dv_addr_hint's text to its
// error, so `--broker localhost:7470` says to write tcp://localhost:7470.
//
// Pure functions over strings; no state, nothing to free.
#ifndef DV_ADDR_H
#define DV_ADDR_H

#include <stdbool.h>
#include <stddef.h>

// A hint for endpoint, which zmq_bind (bind) or zmq_connect (!bind) refused
// with zmq_errno zerr, written to buf (size bytes, NUL-terminated; "" when
// there is nothing to add). The hint starts with "; " so callers append it
// after libzmq's message. Returns buf.
const char *
dv_addr_hint(const char *endpoint, int zerr, bool bind, char *buf, size_t size);

#endif
