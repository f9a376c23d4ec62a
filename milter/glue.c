/* glue.c - placeholder */
typedef int fg_glue_placeholder;
