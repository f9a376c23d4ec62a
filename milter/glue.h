/*
 * glue.h - the libmilter callbacks: copy what the MTA says into plain
 * facts, ask lib/ (store, policy), turn the verdict into SMFIS_* and a
 * reply.  Nothing else lives here.
 */
#ifndef FG_GLUE_H
#define FG_GLUE_H

#include <stdint.h>

#include "store.h"

/* smfi_register() with floodgate's callbacks; 0 or -1. */
int fg_glue_register(void);
/* The store the callbacks record into; before smfi_main(). */
void fg_glue_init(fg_store *st);
/* The other hosts' counts the sessions add (share.h); before smfi_main(). */
struct fg_share;
void fg_glue_set_share(struct fg_share *sh);
/* Sessions asleep in the tarpit now. */
int64_t fg_glue_tarpit(void);
/* After smfi_main() returned: wakes sleeping delays. */
void fg_glue_shutdown(void);

#endif
