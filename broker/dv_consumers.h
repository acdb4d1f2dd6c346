// dv_consumers — result stream consumers as an operator sees them
// (protocol 1.8): consumer_list pages through every consumer the broker
// keeps, with its position, the queue's last seq and who follows it, and
// consumer_forget removes one: its stored position, its name and its
// slot among DV_MAX_CONSUMERS (which follow could only fill before).
//
// The cursors themselves live in dv_results (follow, ack, unfollow).
// Internal to broker/; loop thread only.
#ifndef DV_CONSUMERS_H
#define DV_CONSUMERS_H

#include "dv_broker_int.h"

// consumer_list {queue?, from?}: `consumers` {total, consumers: [{queue,
// consumer, acked, last, followed, window?, in_flight?, owner?}], next?},
// sorted by queue then consumer; `from`/`next` are [queue, consumer].
client_handler_fn dv_consumers_on_list;

// consumer_forget {queue, consumer}: `ok` {queue, consumer, acked} once
// the removal is stored; DV_ENOENT for a consumer the broker does not keep.
client_handler_fn dv_consumers_on_forget;

#endif
