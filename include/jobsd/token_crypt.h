/* token_crypt: optional at-rest encryption of the Mercado Livre tokens stored in
 * marketplace_connections (TOKEN_ENCRYPTION_KEY, 32 bytes in base64): AES-256-GCM with a
 * random 96-bit nonce, the connection id and the column name as associated data (a value
 * cannot be moved to another row or column), stored as "enc:v1:<base64(nonce|ct|tag)>".
 * Values without the prefix are plaintext (written before encryption was turned on, or by
 * another writer) and are read as they are. */
#ifndef JOBSD_TOKEN_CRYPT_H
#define JOBSD_TOKEN_CRYPT_H

#include "jobsd/err.h"

struct token_crypt;

/* NULL key: no encryption (seal returns a copy). NULL + e when the key is invalid. */
MUSTCHECK struct token_crypt *token_crypt_new(const char *b64_key, struct err *e);
void token_crypt_free(struct token_crypt *t);

/* New string (caller frees). */
char *token_crypt_seal(const struct token_crypt *t, const char *plain, const char *row_id,
                       const char *column);
/* New string (caller frees, wipe it), or NULL with e (a sealed value without the key, or one
 * that does not authenticate). */
MUSTCHECK char *token_crypt_open(const struct token_crypt *t, const char *stored,
                                 const char *row_id, const char *column, struct err *e);

/* OpenSSL's version text, for `jobsd version`. */
const char *token_crypt_library_version(void);

#endif
