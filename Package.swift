// swift-tools-version:6.0
import PackageDescription

/// The eight stage executables and lead-diff. Each is a thin `lead-<name>` target over the libraries.
let stages = ["fetch", "flatten", "normalize", "tag", "score", "tier", "export", "cleanup", "diff"]

#if arch(x86_64)
let simdFlags = ["-O3", "-march=x86-64-v2"]
#else
let simdFlags = ["-O3"]
#endif

/// Release builds skip Swift's run-time exclusivity checks: the byte buffers of the hot loops
/// are classes, and the checks on their properties cost half the time of a stage.
let fast: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "LeadETL",
    platforms: [.macOS(.v13)],
    products: stages.map { .executable(name: "lead-\($0)", targets: ["lead-\($0)"]) },
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CCSV", path: "Sources/CCSV"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
        .systemLibrary(name: "CWriteback", path: "Sources/CWriteback"),
        .systemLibrary(name: "CHints", path: "Sources/CHints"),
        .target(
            name: "CSimdJSON",
            path: "Sources/CSimdJSON",
            // simdjson's On-Demand parser is compiled for the instruction set the compiler may
            // assume: x86-64-v2 (SSE4.2, PCLMUL, POPCNT; every x86-64 CPU since 2009) selects its
            // 128-bit "westmere" kernels instead of the scalar fallback.
            cxxSettings: [.unsafeFlags(simdFlags)],
            linkerSettings: [.linkedLibrary("simdjson"), .linkedLibrary("stdc++")]
        ),
        .target(name: "CCSVRows", dependencies: ["CCSV"], path: "Sources/CCSVRows",
                cSettings: [.unsafeFlags(["-O3"])], linkerSettings: [.linkedLibrary("csv")]),
        .target(
            name: "StageKit",
            dependencies: [
                "CCSV", "CCSVRows", "CZlib", "CSimdJSON", "CWriteback",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: fast
        ),
        .target(name: "LeadRules", dependencies: ["StageKit", "CHints"], swiftSettings: fast),
        .target(name: "LeadStores", dependencies: ["StageKit", "LeadRules", "CSQLite"], swiftSettings: fast),
        .target(name: "Connectors", dependencies: ["StageKit", "LeadRules", "LeadStores"], swiftSettings: fast),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "StageKitTests", dependencies: ["StageKit", "TestSupport"]),
        .testTarget(name: "LeadRulesTests", dependencies: ["LeadRules", "TestSupport"]),
        .testTarget(name: "ConnectorsTests", dependencies: ["Connectors", "TestSupport"]),
        .testTarget(name: "LeadStoresTests", dependencies: ["LeadStores", "TestSupport"]),
        .testTarget(name: "CaseTests", dependencies: ["TestSupport", "CZlib", "LeadStores"]),
    ] + stages.map { stage in
        .executableTarget(
            name: "lead-\(stage)",
            dependencies: [
                "StageKit", "LeadRules", "LeadStores", "Connectors",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/lead-\(stage)",
            swiftSettings: fast
        )
    },
    cxxLanguageStandard: .cxx17
)
