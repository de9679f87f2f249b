package dev.sdrt.exporter.config;

/**
 * A config.json that lacks a required key, holds a value of the wrong JSON type or out of its range, or is not
 * a JSON object; the message names the file and the key. Unchecked: it reports bad input data that callers pass on, and
 * the typed getters are called in many places that should not each declare it.
 */
public class ConfigException extends RuntimeException {
    public ConfigException(String message) {
        super(message);
    }

    public ConfigException(String message, Throwable cause) {
        super(message, cause);
    }
}
