/** grpc-js as the server uses it: loaded after {@link ./no_default_roots.ts}, quiet. */
import "./no_default_roots.ts";
import * as grpc from "@grpc/grpc-js";

// grpc-js would print its own lines to stderr; kine reports failures itself.
grpc.setLogVerbosity(grpc.logVerbosity.NONE);

export { grpc };
