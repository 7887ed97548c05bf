/*
 * wheel: every open connection, filed by the second of its next deadline —
 * the end of the time it has to send CONNECT, its keep-alive expiry, the
 * point where it becomes a slow reader — in a timing wheel of WHEEL_SLOTS
 * one-second slots. The broker's once-a-second tick looks only at the slots
 * whose second has come, so an idle connection costs a visit per keep-alive
 * period, not one per second: 50,000 idle connections are not scanned
 * every tick.
 *
 * Deadlines move later all the time (each packet read pushes the keep
 * alive), and the wheel is not told: when a slot comes, each connection in
 * it is checked against its real deadline and, if that is still ahead,
 * filed again. A deadline that moves earlier (a write that starts, CONNECT
 * accepted) is filed again at once (wheel_refile). A deadline more than
 * WHEEL_SLOTS seconds away waits in the last slot and is looked at once a
 * lap.
 *
 * The wheel is also the broker's list of open connections: a connection is
 * in exactly one slot from accept to close (closed ones move to the
 * closing and lingering lists). Iterating them all (broker_clients)
 * takes a snapshot, so a connection that closes others while being
 * handled cannot make the walk stray.
 */
#include "internal.h"

#include <stdlib.h>

/* The second a deadline in milliseconds falls in. */
static uint64_t second_of(uint64_t ms)
{
    return ms / 1000u;
}

static void slot_push(client_t **head, client_t *c)
{
    client_list_push(head, c);
}

void wheel_add(broker_t *b, client_t *c, uint64_t due_ms)
{
    uint64_t now_s = second_of(clock_mono_ms());
    uint64_t due_s = second_of(due_ms);
    if (due_s <= now_s)
        due_s = now_s + 1;
    if (due_s - now_s >= WHEEL_SLOTS)
        due_s = now_s + WHEEL_SLOTS - 1;
    c->wheel_slot = (uint16_t)(due_s % WHEEL_SLOTS);
    c->in_wheel = true;
    slot_push(&b->wheel[c->wheel_slot], c);
    b->wheel_count++;
}

void wheel_remove(broker_t *b, client_t *c)
{
    if (!c->in_wheel)
        return;
    client_t **head = c->wheel_slot == WHEEL_DUE ? &b->wheel_due : &b->wheel[c->wheel_slot];
    client_list_remove(head, c);
    c->in_wheel = false;
    b->wheel_count--;
}

void wheel_refile(broker_t *b, client_t *c, uint64_t due_ms)
{
    if (!c->in_wheel)
        return;
    wheel_remove(b, c);
    wheel_add(b, c, due_ms);
}

void wheel_advance(broker_t *b, uint64_t now_ms, wheel_visit_fn visit)
{
    uint64_t now_s = second_of(now_ms);
    if (!b->wheel_second)
        b->wheel_second = now_s;
    /* Every slot from the last one looked at up to now, at most one lap. */
    uint64_t from = b->wheel_second;
    if (now_s - from >= WHEEL_SLOTS)
        from = now_s - WHEEL_SLOTS + 1;
    for (uint64_t s = from; s <= now_s; s++) {
        client_t **slot = &b->wheel[s % WHEEL_SLOTS];
        /* The slot's connections wait in the due list while each is
         * looked at: visiting one may close others. */
        while (*slot) {
            client_t *c = *slot;
            client_list_remove(slot, c);
            c->wheel_slot = WHEEL_DUE;
            client_list_push(&b->wheel_due, c);
        }
        while (b->wheel_due) {
            client_t *c = b->wheel_due;
            client_list_remove(&b->wheel_due, c);
            c->in_wheel = false;
            b->wheel_count--;
            visit(b, c, now_ms); /* files it again, or closes it */
        }
    }
    b->wheel_second = now_s + 1;
}

size_t broker_clients(broker_t *b, client_t ***out)
{
    size_t n = 0;
    client_t **all = malloc((b->wheel_count ? b->wheel_count : 1) * sizeof *all);
    if (!all) {
        *out = NULL;
        return 0;
    }
    for (size_t s = 0; s < WHEEL_SLOTS && n < b->wheel_count; s++)
        for (client_t *c = b->wheel[s]; c && n < b->wheel_count; c = c->next)
            all[n++] = c;
    *out = all;
    return n;
}
