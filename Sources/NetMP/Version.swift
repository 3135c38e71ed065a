public enum NetMPVersion { public static let string = "0.1.0" }
