/* report/blocks.h: the live-block table (blocks.c). */
#ifndef ML_REPORT_BLOCKS_H
#define ML_REPORT_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

enum ml_block_state {
    ML_BLOCK_LIVE = 1,      /* handed to the program */
    ML_BLOCK_FREED = 2,     /* freed, waiting in the quarantine */
    ML_BLOCK_INHERITED = 3, /* live, allocated before this process forked */
};

struct ml_block_rec {
    uintptr_t addr;
    uint64_t size; /* requested size (saturates at 2^40 - 1) */
    uint32_t stack, free_stack;
    uint32_t seq; /* allocation sequence number (live records) */
    uint16_t tag;
    uint8_t state;
    uint8_t kind; /* enum ml_alloc_kind: which call allocated it (2 bits) */
};

/* Records a live block; replaces any record at addr.  seq orders the
 * allocations (report/reach.c: the first-allocated block of a lost cycle
 * is its definite one).  0, or -1 when the table cannot grow (the block is
 * then simply not traced).  kind: enum ml_alloc_kind. */
int ml_blocks_insert(uintptr_t addr, uint64_t size, uint32_t stack, uint16_t tag, uint32_t seq,
                     unsigned kind);
/* Sets the allocation kind of the live record at addr. */
void ml_blocks_set_kind(uintptr_t addr, unsigned kind);
/* The record (live, inherited or freed) whose block [addr, addr+size)
 * holds a, nearest below a; 0 or -1.  Walks the whole table: for error
 * reports only, never a hot path. */
int ml_blocks_find_containing(uintptr_t a, struct ml_block_rec *out);
/* Marks addr freed, held by hold (18 bits, see ml_trace_holds), and when
 * it was live stores addr in *cell (if cell is non-NULL) before anyone
 * else can see the record freed.  1: it was live (*out holds it as it
 * was); 0: it was already freed and is still held (*out holds the freed
 * record); -1: unknown address. */
int ml_blocks_free(uintptr_t addr, uint32_t free_stack, uint32_t hold, void **cell, struct ml_block_rec *out);
/* Drops the record at addr (*out gets it when out is non-NULL); 0 or -1. */
int ml_blocks_remove(uintptr_t addr, struct ml_block_rec *out);
/* Drops the record at addr if it is live or inherited: 1 (*out holds it);
 * 0: it is freed and held (*out holds it, the record stays); -1: none. */
int ml_blocks_take_live(uintptr_t addr, struct ml_block_rec *out);
/* Drops the record at addr only if it is a freed one (held or not). */
void ml_blocks_remove_freed(uintptr_t addr);
/* Provided by the trace layer (trace.c): whether the freed block at addr
 * still waits where hold says (a quarantine cell that holds addr); hold 0
 * always holds.  A freed record whose hold lets go of its block counts as
 * no record at all from then on, in every function here.  Lock-free, may
 * be called with a shard lock held. */
int ml_trace_holds(uint32_t hold, uintptr_t addr);
/* Copies the record at addr; 0 or -1. */
int ml_blocks_lookup(uintptr_t addr, struct ml_block_rec *out);
/* In a fork child: every live block now belongs to the parent's report.
 * allocs: the allocations counted so far (the last sequence number). */
void ml_blocks_mark_inherited(uint64_t allocs);
/* The allocation count reached a multiple of 2^32 (sequence number 0). */
void ml_blocks_seq_wrapped(void);
/* Records in the table (live, inherited and freed, stale ones included):
 * at least the live ones. */
size_t ml_blocks_record_count(void);
/* Shards that have a table: how widely the blocks so far are spread over
 * the table's locks (tests/unit/unit_blocks.c). */
unsigned ml_blocks_shards_used(void);
/* Copies up to cap live and inherited blocks, flags = 1 for inherited
 * ones; locked = 0 when locks cannot be trusted (a fatal signal). */
struct ml_live;
size_t ml_blocks_snapshot(struct ml_live *out, size_t cap, int locked);
void ml_blocks_atfork(int phase);

#endif
