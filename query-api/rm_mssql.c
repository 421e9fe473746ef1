#include "read_model.h"
sm_status rm_mssql_open(const char *conn, rm_store **out, sm_error *err)
{
    (void)conn;
    *out = NULL;
    return sm_fail(err, SM_ERR_INVALID, "stub");
}
