package dev.sdrt.enginebuilder;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/** sdrt's version, from the pom.properties Maven puts in the engine-builder jar ("dev" when run from classes). */
public final class SdrtVersion {

    private static final String VERSION = read();

    private SdrtVersion() {}

    public static String get() {
        return VERSION;
    }

    private static String read() {
        try (InputStream in = SdrtVersion.class.getResourceAsStream(
                "/META-INF/maven/dev.sdrt/sdrt-engine-builder/pom.properties")) {
            if (in == null) {
                return "dev";
            }
            Properties properties = new Properties();
            properties.load(in);
            return properties.getProperty("version", "dev");
        } catch (IOException e) {
            return "dev";
        }
    }
}
