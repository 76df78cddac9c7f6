"""Real-world error messages, as the libraries print them, with the code the default catalog
must give them. Shared by the matcher tests and bench/matcher_bench.py."""

from __future__ import annotations

# (message, expected code)
MESSAGES: list[tuple[str, str]] = [
    # ---- transient & network: requests / urllib3 / httpx / aiohttp / builtins
    ("HTTPConnectionPool(host='localhost', port=8000): Max retries exceeded with url: /api/v1/runs "
     "(Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f3a2c1b5d90>: "
     "Failed to establish a new connection: [Errno 111] Connection refused'))", "CONNECTION_REFUSED"),
    ("httpx.ConnectError: [Errno 111] Connection refused", "CONNECTION_REFUSED"),
    ("Cannot connect to host api.internal:8443 ssl:default [Connect call failed ('10.0.3.7', 8443)]",
     "CONNECTION_REFUSED"),
    ("ConnectionResetError: [Errno 104] Connection reset by peer", "CONNECTION_RESET"),
    ("('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))",
     "CONNECTION_RESET"),
    ("httpx.RemoteProtocolError: Server disconnected without sending a response.", "CONNECTION_RESET"),
    ("aiohttp.client_exceptions.ServerDisconnectedError: Server disconnected", "CONNECTION_RESET"),
    ("peer closed connection without sending complete message body (incomplete chunked read)", "CONNECTION_RESET"),
    ("BrokenPipeError: [Errno 32] Broken pipe", "CONNECTION_RESET"),
    ("openai.APIConnectionError: Connection error.", "CONNECTION_RESET"),
    ("HTTPSConnectionPool(host='api.openai.com', port=443): Max retries exceeded with url: /v1/chat/completions "
     "(Caused by NameResolutionError(\"<urllib3.connection.HTTPSConnection object at 0x7f>: Failed to resolve "
     "'api.openai.com' ([Errno -3] Temporary failure in name resolution)\"))", "DNS_RESOLUTION_FAILED"),
    ("Cannot connect to host payments.svc:443 ssl:default [Name or service not known]", "DNS_RESOLUTION_FAILED"),
    ("socket.gaierror: [Errno 8] nodename nor servname provided, or not known", "DNS_RESOLUTION_FAILED"),
    ("OSError: [Errno 101] Network is unreachable", "NETWORK_UNREACHABLE"),
    ('botocore.exceptions.EndpointConnectionError: Could not connect to the endpoint URL: '
     '"https://bedrock-runtime.us-east-1.amazonaws.com/model/x/converse"', "NETWORK_UNREACHABLE"),
    ("503 Server Error: Service Unavailable for url: https://api.example.com/v1/items", "SERVICE_UNAVAILABLE"),
    ("Error code: 529 - {'type': 'error', 'error': {'type': 'overloaded_error', 'message': 'Overloaded'}}",
     "SERVICE_UNAVAILABLE"),
    ("Error code: 503 - {'error': {'message': 'The engine is currently overloaded, please try again later', "
     "'type': 'server_error'}}", "SERVICE_UNAVAILABLE"),
    ("google.api_core.exceptions.ServiceUnavailable: 503 The service is currently unavailable.",
     "SERVICE_UNAVAILABLE"),
    ("Server error '502 Bad Gateway' for url 'https://gw.example.com/v1/plan'", "UPSTREAM_SERVER_ERROR"),
    ("500 Server Error: Internal Server Error for url: https://api.example.com/v1/items", "UPSTREAM_SERVER_ERROR"),
    ("kubernetes.client.exceptions.ApiException: (500)\nReason: Internal Server Error\nHTTP response headers: "
     "HTTPHeaderDict({'Content-Type': 'application/json'})", "UPSTREAM_SERVER_ERROR"),
    ("Error code: 500 - {'error': {'message': 'The server had an error while processing your request. "
     "Sorry about that!', 'type': 'server_error'}}", "UPSTREAM_SERVER_ERROR"),
    # ---- timeouts
    ("HTTPSConnectionPool(host='api.x.com', port=443): Read timed out. (read timeout=10)", "READ_TIMEOUT"),
    ("httpx.ReadTimeout: The read operation timed out", "READ_TIMEOUT"),
    ('botocore.exceptions.ReadTimeoutError: Read timeout on endpoint URL: "https://s3.amazonaws.com/b/k"',
     "READ_TIMEOUT"),
    ("redis.exceptions.TimeoutError: Timeout reading from socket", "READ_TIMEOUT"),
    ("HTTPSConnectionPool(host='10.255.255.1', port=443): Max retries exceeded with url: / (Caused by "
     "ConnectTimeoutError(<urllib3.connection.HTTPSConnection object at 0x7f>, 'Connection to 10.255.255.1 "
     "timed out. (connect timeout=5)'))", "CONNECT_TIMEOUT"),
    ('botocore.exceptions.ConnectTimeoutError: Connect timeout on endpoint URL: "https://sts.amazonaws.com/"',
     "CONNECT_TIMEOUT"),
    ("TimeoutError: [Errno 110] Connection timed out", "CONNECT_TIMEOUT"),
    ("504 Server Error: Gateway Timeout for url: https://api.example.com/v1/report", "GATEWAY_TIMEOUT"),
    ("upstream request timeout", "GATEWAY_TIMEOUT"),
    ("openai.APITimeoutError: Request timed out.", "OPERATION_TIMEOUT"),
    ("google.api_core.exceptions.DeadlineExceeded: 504 Deadline Exceeded", "OPERATION_TIMEOUT"),
    ("asyncio.exceptions.TimeoutError", "OPERATION_TIMEOUT"),
    ("psycopg.errors.QueryCanceled: canceling statement due to statement timeout", "QUERY_TIMEOUT"),
    ("(pymysql.err.OperationalError) (1205, 'Lock wait timeout exceeded; try restarting transaction')",
     "QUERY_TIMEOUT"),
    # ---- rate limits
    ("429 Client Error: Too Many Requests for url: https://api.github.com/repos/x/y", "RATE_LIMITED"),
    ("Client error '429 Too Many Requests' for url 'https://api.example.com/search'", "RATE_LIMITED"),
    ("aiohttp.client_exceptions.ClientResponseError: 429, message='Too Many Requests', url='https://x/y'",
     "RATE_LIMITED"),
    ("Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-4o in organization org-abc on tokens "
     "per min (TPM): Limit 30000, Used 29100, Requested 1500. Please try again in 1.2s.', 'type': 'tokens', "
     "'param': None, 'code': 'rate_limit_exceeded'}}", "LLM_RATE_LIMITED"),
    ("Error code: 429 - {'type': 'error', 'error': {'type': 'rate_limit_error', 'message': 'Number of request "
     "tokens has exceeded your per-minute rate limit'}}", "LLM_RATE_LIMITED"),
    ("An error occurred (ThrottlingException) when calling the Converse operation (reached max retries: 4): "
     "Too many requests, please wait before trying again.", "CLOUD_THROTTLED"),
    ("An error occurred (SlowDown) when calling the PutObject operation (reached max retries: 4): "
     "Please reduce your request rate.", "CLOUD_THROTTLED"),
    ("<HttpError 403 when requesting https://www.googleapis.com/drive/v3/files returned \"User Rate Limit "
     "Exceeded\". Details: \"[{'domain': 'usageLimits', 'reason': 'userRateLimitExceeded'}]\">",
     "CLOUD_THROTTLED"),
    # ---- auth & permission
    ("Error code: 401 - {'error': {'message': 'Incorrect API key provided: sk-abc123. You can find your API key "
     "at https://platform.openai.com/account/api-keys.', 'type': 'invalid_request_error', 'param': None, "
     "'code': 'invalid_api_key'}}", "AUTH_FAILED"),
    ("Error code: 401 - {'type': 'error', 'error': {'type': 'authentication_error', 'message': 'invalid x-api-key'}}",
     "AUTH_FAILED"),
    ('connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  password authentication '
     'failed for user "nova"', "AUTH_FAILED"),
    ("An error occurred (UnrecognizedClientException) when calling the InvokeModel operation: The security token "
     "included in the request is invalid.", "AUTH_FAILED"),
    ("redis.exceptions.AuthenticationError: NOAUTH Authentication required.", "AUTH_FAILED"),
    ("An error occurred (ExpiredTokenException) when calling the GetCallerIdentity operation: The security token "
     "included in the request is expired", "TOKEN_EXPIRED"),
    ("google.auth.exceptions.RefreshError: ('invalid_grant: Token has been expired or revoked.', "
     "{'error': 'invalid_grant'})", "TOKEN_EXPIRED"),
    ("An error occurred (AccessDenied) when calling the GetObject operation: Access Denied", "PERMISSION_DENIED"),
    ('(403)\nReason: Forbidden\nHTTP response body: {"kind":"Status","apiVersion":"v1","status":"Failure",'
     '"message":"deployments.apps \\"api\\" is forbidden: User \\"system:serviceaccount:prod:runner\\" cannot '
     'patch resource \\"deployments\\" in API group \\"apps\\" in the namespace \\"prod\\"","reason":"Forbidden",'
     '"code":403}', "PERMISSION_DENIED"),
    ("Error code: 403 - {'type': 'error', 'error': {'type': 'permission_error', 'message': 'Your API key does "
     "not have permission to use the specified resource.'}}", "PERMISSION_DENIED"),
    ("PermissionError: [Errno 13] Permission denied: '/var/lib/rollguard/spool'", "PERMISSION_DENIED"),
    ("User: arn:aws:sts::123:assumed-role/agent/x is not authorized to perform: s3:PutObject on resource",
     "PERMISSION_DENIED"),
    ("botocore.exceptions.NoCredentialsError: Unable to locate credentials", "CREDENTIALS_MISSING"),
    ("openai.OpenAIError: The api_key client option must be set either by passing api_key to the client or by "
     "setting the OPENAI_API_KEY environment variable", "CREDENTIALS_MISSING"),
    ("google.auth.exceptions.DefaultCredentialsError: Your default credentials were not found.",
     "CREDENTIALS_MISSING"),
    ("capability 'net.http' denied by policy for agent planner-7", "CAPABILITY_DENIED"),
    # ---- budget & quota
    ("BudgetExceededError: budget exceeded: run cost 1.52 USD > limit 1.50 USD", "BUDGET_EXCEEDED"),
    ("Error code: 429 - {'error': {'message': 'You exceeded your current quota, please check your plan and "
     "billing details.', 'type': 'insufficient_quota', 'param': None, 'code': 'insufficient_quota'}}",
     "QUOTA_EXCEEDED"),
    ("Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or "
     "purchase credits.", "QUOTA_EXCEEDED"),
    ("google.api_core.exceptions.ResourceExhausted: 429 Quota exceeded for quota metric 'Generate Content API "
     "requests per minute' and limit 'GenerateContent request limit per minute'", "QUOTA_EXCEEDED"),
    ('pods "worker-5d8f" is forbidden: exceeded quota: compute-resources, requested: limits.cpu=2, '
     'used: limits.cpu=8, limited: limits.cpu=8', "QUOTA_EXCEEDED"),
    ("Error code: 400 - {'error': {'message': \"This model's maximum context length is 8192 tokens. However, your "
     "messages resulted in 9012 tokens. Please reduce the length of the messages.\", 'type': "
     "'invalid_request_error', 'param': 'messages', 'code': 'context_length_exceeded'}}",
     "CONTEXT_LENGTH_EXCEEDED"),
    ("Error code: 400 - {'type': 'error', 'error': {'type': 'invalid_request_error', 'message': 'prompt is too "
     "long: 215000 tokens > 200000 maximum'}}", "CONTEXT_LENGTH_EXCEEDED"),
    ("An error occurred (ValidationException) when calling the InvokeModel operation: Input is too long for "
     "requested model.", "CONTEXT_LENGTH_EXCEEDED"),
    ("langgraph.errors.GraphRecursionError: Recursion limit of 25 reached without hitting a stop condition.",
     "STEP_LIMIT_EXCEEDED"),
    ("Agent stopped due to iteration limit or time limit.", "STEP_LIMIT_EXCEEDED"),
    ("MemoryError", "OUT_OF_MEMORY"),
    ("redis.exceptions.OutOfMemoryError: OOM command not allowed when used memory > 'maxmemory'.",
     "OUT_OF_MEMORY"),
    ("OSError: [Errno 28] No space left on device: '/tmp/run-42/output.parquet'", "DISK_FULL"),
    ('psycopg.errors.DiskFull: could not extend file "base/16384/24576": No space left on device', "DISK_FULL"),
    # ---- validation & bad input
    ("400 Client Error: Bad Request for url: https://api.example.com/v1/items", "INVALID_INPUT"),
    ("ValueError: invalid literal for int() with base 10: 'abc'", "INVALID_INPUT"),
    ('(422)\nReason: Unprocessable Entity\nHTTP response body: {"message":"Deployment.apps \\"api\\" is invalid: '
     'spec.replicas: Invalid value: -1"}', "INVALID_INPUT"),
    ("1 validation error for CreateRun\ntenant_id\n  Field required [type=missing, input_value={}, "
     "input_type=dict]", "SCHEMA_VALIDATION_FAILED"),
    ("jsonschema.exceptions.ValidationError: 'name' is a required property", "SCHEMA_VALIDATION_FAILED"),
    ("Additional properties are not allowed ('colour' was unexpected)", "SCHEMA_VALIDATION_FAILED"),
    ("TypeError: run() missing 1 required positional argument: 'tenant'", "MISSING_PARAMETER"),
    ("KeyError: 'user_id'", "MISSING_PARAMETER"),
    ("TypeError: unsupported operand type(s) for +: 'int' and 'str'", "TYPE_MISMATCH"),
    ("TypeError: Object of type datetime is not JSON serializable", "TYPE_MISMATCH"),
    ("413 Client Error: Request Entity Too Large for url: https://upload.example.com/v1/files",
     "PAYLOAD_TOO_LARGE"),
    ("Error code: 400 - {'error': {'message': 'Your request was rejected as a result of our safety system.', "
     "'type': 'invalid_request_error', 'code': 'content_policy_violation'}}", "CONTENT_POLICY_VIOLATION"),
    # ---- planner / LLM output
    ("json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)", "LLM_OUTPUT_PARSE_ERROR"),
    ("JSONDecodeError: Expecting ',' delimiter: line 3 column 5 (char 41)", "LLM_OUTPUT_PARSE_ERROR"),
    ("langchain_core.exceptions.OutputParserException: Could not parse LLM output: `I should search`",
     "LLM_OUTPUT_PARSE_ERROR"),
    ("Error code: 400 - {'type': 'error', 'error': {'type': 'invalid_request_error', 'message': 'messages.2: "
     "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_01'}}",
     "LLM_INVALID_TOOL_CALL"),
    ("plan validation failed: step 3 depends on unknown step 7", "PLAN_INVALID"),
    ("planner returned no steps for goal 'summarise inbox'", "PLAN_INVALID"),
    ("openai.LengthFinishReasonError: Could not parse response content as the length limit was reached",
     "LLM_OUTPUT_TRUNCATED"),
    ("loop detected: action 'web_search' repeated 5 times with identical arguments", "PLANNER_LOOP_DETECTED"),
    ("model refused the task: stop_reason=refusal", "LLM_REFUSAL"),
    # ---- tools / skills
    ("skill 'http_fetch' not found in registry", "TOOL_NOT_FOUND"),
    ("Command '['git', 'clone', 'https://example.com/r.git']' returned non-zero exit status 128.",
     "TOOL_EXECUTION_FAILED"),
    ("Command '['pdftotext', 'in.pdf']' timed out after 30 seconds", "TOOL_TIMEOUT"),
    ("skill 'web_search' timed out after 20s", "TOOL_TIMEOUT"),
    ("TypeError: search() got an unexpected keyword argument 'querry'", "TOOL_INVALID_ARGS"),
    # ---- dependencies & data
    ("404 Client Error: Not Found for url: https://api.example.com/v1/items/42", "RESOURCE_NOT_FOUND"),
    ("An error occurred (NoSuchKey) when calling the GetObject operation: The specified key does not exist.",
     "RESOURCE_NOT_FOUND"),
    ("FileNotFoundError: [Errno 2] No such file or directory: '/etc/rollguard/flags/flags.json'",
     "RESOURCE_NOT_FOUND"),
    ("sqlalchemy.exc.NoResultFound: No row was found when one was required", "RESOURCE_NOT_FOUND"),
    ('(409)\nReason: Conflict\nHTTP response body: {"message":"Operation cannot be fulfilled on deployments.apps '
     '\\"api\\": the object has been modified; please apply your changes to the latest version and try again"}',
     "CONFLICT"),
    ("An error occurred (ConditionalCheckFailedException) when calling the PutItem operation: The conditional "
     "request failed", "CONFLICT"),
    ('connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused\n\tIs the '
     'server running on that host and accepting TCP/IP connections?', "DB_CONNECTION_FAILED"),
    ("psycopg.OperationalError: consuming input failed: server closed the connection unexpectedly\n\tThis "
     "probably means the server terminated abnormally", "DB_CONNECTION_FAILED"),
    ("psycopg.OperationalError: connection failed: FATAL:  sorry, too many clients already", "DB_CONNECTION_FAILED"),
    ("redis.exceptions.ConnectionError: Error 111 connecting to localhost:6379. Connection refused.",
     "DB_CONNECTION_FAILED"),
    ("sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection timed out, "
     "timeout 30.00", "DB_CONNECTION_FAILED"),
    ('psycopg.errors.UniqueViolation: duplicate key value violates unique constraint "users_email_key"\n'
     'DETAIL:  Key (email)=(a@b.c) already exists.', "DB_CONSTRAINT_VIOLATION"),
    ('insert or update on table "runs" violates foreign key constraint "runs_tenant_id_fkey"',
     "DB_CONSTRAINT_VIOLATION"),
    ("psycopg.errors.DeadlockDetected: deadlock detected\nDETAIL:  Process 123 waits for ShareLock",
     "DB_DEADLOCK"),
    ("could not serialize access due to concurrent update", "DB_DEADLOCK"),
    ('psycopg.errors.UndefinedTable: relation "failure_matches" does not exist\nLINE 1: SELECT * FROM '
     'failure_matches', "DB_SCHEMA_MISMATCH"),
    ("sqlite3.OperationalError: no such table: runs", "DB_SCHEMA_MISMATCH"),
    ("ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed "
     "certificate in certificate chain (_ssl.c:1006)", "TLS_HANDSHAKE_FAILED"),
    ("Cannot connect to host api.x:443 ssl:True [SSLCertVerificationError: (1, '[SSL: CERTIFICATE_VERIFY_FAILED] "
     "certificate verify failed: unable to get local issuer certificate')]", "TLS_HANDSHAKE_FAILED"),
    ("UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte",
     "DATA_DECODE_ERROR"),
    ("binascii.Error: Incorrect padding", "DATA_DECODE_ERROR"),
    # ---- internal
    ("RecursionError: maximum recursion depth exceeded while calling a Python object", "INTERNAL_ERROR"),
    ("AttributeError: 'NoneType' object has no attribute 'get'", "NULL_REFERENCE"),
    ("TypeError: 'NoneType' object is not subscriptable", "NULL_REFERENCE"),
    ("ModuleNotFoundError: No module named 'tiktoken'", "IMPORT_ERROR"),
    ("ImportError: cannot import name 'Anthropic' from 'anthropic'", "IMPORT_ERROR"),
    ("kubernetes.config.config_exception.ConfigException: Invalid kube-config file. No configuration found.",
     "CONFIGURATION_ERROR"),
    ("kubernetes.config.config_exception.ConfigException: Service host/port is not set.", "CONFIGURATION_ERROR"),
]

# Messages that contain a word some generic pattern would catch, but that must NOT get that
# specific code (the expected code is the right one; "UNKNOWN_ERROR" means nothing matches).
MUST_NOT: list[tuple[str, str, str]] = [
    # (message, code it must not get, code it must get)
    ("Error code: 429 - {'error': {'message': 'You exceeded your current quota, please check your plan', "
     "'type': 'insufficient_quota', 'code': 'insufficient_quota'}}", "LLM_RATE_LIMITED", "QUOTA_EXCEEDED"),
    ("Error code: 429 - {'error': {'message': 'You exceeded your current quota', 'type': 'insufficient_quota'}}",
     "RATE_LIMITED", "QUOTA_EXCEEDED"),
    ('pods "w" is forbidden: exceeded quota: compute-resources', "PERMISSION_DENIED", "QUOTA_EXCEEDED"),
    ('connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused',
     "CONNECTION_REFUSED", "DB_CONNECTION_FAILED"),
    ('duplicate key value violates unique constraint "k"\nDETAIL:  Key (id)=(1) already exists.', "CONFLICT",
     "DB_CONSTRAINT_VIOLATION"),
    ("Error code: 401 - {'error': {'message': 'Incorrect API key provided', 'type': 'invalid_request_error'}}",
     "INVALID_INPUT", "AUTH_FAILED"),
    ("An error occurred (ExpiredToken) when calling the ListBuckets operation: The security token included in "
     "the request is expired", "AUTH_FAILED", "TOKEN_EXPIRED"),
    ("HTTPSConnectionPool(host='x', port=443): Read timed out. (read timeout=10)", "OPERATION_TIMEOUT",
     "READ_TIMEOUT"),
    ("Command '['sleep', '60']' timed out after 5 seconds", "OPERATION_TIMEOUT", "TOOL_TIMEOUT"),
    ("TypeError: 'NoneType' object is not iterable", "TYPE_MISMATCH", "NULL_REFERENCE"),
    ("langgraph.errors.GraphRecursionError: Recursion limit of 25 reached without hitting a stop condition.",
     "INTERNAL_ERROR", "STEP_LIMIT_EXCEEDED"),
    ("Cannot connect to host api.svc:443 ssl:default [Name or service not known]", "CONNECTION_REFUSED",
     "DNS_RESOLUTION_FAILED"),
    ("HTTPSConnectionPool(host='api.openai.com', port=443): Max retries exceeded with url: /v1 (Caused by "
     "NameResolutionError(\"Failed to resolve 'api.openai.com' ([Errno -2] Name or service not known)\"))",
     "CONNECTION_REFUSED", "DNS_RESOLUTION_FAILED"),
    ("the deployment finished successfully in 3.2s", "OPERATION_TIMEOUT", "UNKNOWN_ERROR"),
    ("set step_timeout_seconds to 30 for slow tools", "OPERATION_TIMEOUT", "UNKNOWN_ERROR"),
    ("token usage: 1520 prompt, 300 completion", "CONTEXT_LENGTH_EXCEEDED", "UNKNOWN_ERROR"),
    ("the rate of successful runs is 99.2%", "RATE_LIMITED", "UNKNOWN_ERROR"),
    ("planner chose tool 'web_search' for step 2", "TOOL_NOT_FOUND", "UNKNOWN_ERROR"),
    ("the build found 0 vulnerabilities", "RESOURCE_NOT_FOUND", "UNKNOWN_ERROR"),
    ("everything is fine", "INTERNAL_ERROR", "UNKNOWN_ERROR"),
]
