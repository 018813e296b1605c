//! docker-compose.test.yml, checked without a container engine (none on the machines this is
//! built on): its services, images, ports, health checks and sample data, and that the
//! migrator's environment is a configuration the binary accepts, aimed at the two services.

use std::collections::HashMap;
use std::path::Path;

use migrator_core::config::{ConfigSource, load};
use yaml_rust2::{Yaml, YamlLoader};

fn compose() -> Yaml {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docker-compose.test.yml");
    let text = std::fs::read_to_string(&path).expect("docker-compose.test.yml at the top level");
    YamlLoader::load_from_str(&text)
        .expect("valid YAML")
        .remove(0)
}

fn strings(node: &Yaml) -> Vec<String> {
    node.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_compose_file_runs_a_source_a_destination_and_the_migrator_from_the_environment() {
    let doc = compose();
    let services = &doc["services"];
    assert_eq!(services["source"]["image"].as_str(), Some("postgres:15"));
    assert_eq!(
        services["destination"]["image"].as_str(),
        Some("postgres:18")
    );
    assert!(
        strings(&services["source"]["command"]).contains(&"wal_level=logical".to_owned()),
        "the source needs wal_level=logical"
    );
    for side in ["source", "destination"] {
        assert!(
            !services[side]["healthcheck"]["test"].is_badvalue(),
            "{side} has no health check"
        );
        assert_eq!(
            services["migrator"]["depends_on"][side]["condition"].as_str(),
            Some("service_healthy"),
            "the migrator must wait for {side}"
        );
    }
    // The sample data it mounts exists.
    let volume = strings(&services["source"]["volumes"]).remove(0);
    let file = volume
        .trim_start_matches("./")
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(&file).is_file(),
        "{file} is missing"
    );
    assert_eq!(
        strings(&services["migrator"]["ports"]),
        ["8080:8080".to_owned()]
    );
    assert_eq!(services["migrator"]["build"].as_str(), Some("."));

    // The environment is a whole, valid configuration: loaded as the binary loads it.
    let env: HashMap<String, String> = services["migrator"]["environment"]
        .as_hash()
        .expect("environment as a map")
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Yaml::String(s) => s.clone(),
                Yaml::Integer(i) => i.to_string(),
                Yaml::Boolean(b) => b.to_string(),
                other => panic!("{other:?}"),
            };
            (k.as_str().unwrap().to_owned(), value)
        })
        .collect();
    assert!(env.keys().all(|k| k.starts_with("MIGRATOR__")), "{env:?}");
    let settings = load(&ConfigSource {
        file: None,
        env: Some(env.clone()),
    })
    .unwrap_or_else(|e| panic!("the compose environment is not a valid configuration: {e}"));
    assert!(settings.server.listen.ends_with(":8080"));
    let mapping = &settings.mappings["demo"];
    let ctx =
        migrator_core::phases::MappingContext::new("demo", mapping, &settings.migration).unwrap();
    assert_eq!(ctx.source.endpoints(), ["source:5432"]);
    assert_eq!(ctx.destination.endpoints(), ["destination:5432"]);
    // The passwords in the URLs are the services' own.
    for (side, service) in [("SOURCE", "source"), ("DESTINATION", "destination")] {
        let password = services[service]["environment"]["POSTGRES_PASSWORD"]
            .as_str()
            .unwrap();
        assert!(
            env[&format!("MIGRATOR__MAPPINGS__DEMO__{side}__URL")]
                .contains(&format!(":{password}@{service}:")),
            "{side}"
        );
    }
}
