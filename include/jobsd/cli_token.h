/* cli_token: `jobsd token`, mints an HS256 JWT with JWT_SECRET for local use: a tenant's
 * token (--tenant) as the product's main API issues it, or an operator token (--operator,
 * {"role": "operator"}) for the operator API and the console. */
#ifndef JOBSD_CLI_TOKEN_H
#define JOBSD_CLI_TOKEN_H

extern const char CLI_TOKEN_USAGE[];

/* Prints the token; exit code 0, 1 the token does not fit, 2 usage or configuration. */
int cli_token_run(int argc, char **argv);

#endif
