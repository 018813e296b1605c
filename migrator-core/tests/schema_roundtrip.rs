//! The schema read from a real PostgreSQL 15 database, turned into DDL and applied to a real
//! PostgreSQL 18 database, reads back the same.

use migrator_core::catalog::schema;
use migrator_core::ddl;
use migrator_core::pg::Session;
use migrator_core::testkit::{Cluster, sample};
use tokio_postgres::NoTls;

async fn connect(cluster: &Cluster, db: &str) -> tokio_postgres::Client {
    let (client, connection) = cluster.pg_config(db).connect(NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn every_sample_database_schema_survives_the_trip_from_15_to_18() {
    let (source, destination) = Cluster::start_pair().unwrap();
    sample::load(&source, 50).await.unwrap();
    let dest_admin = connect(&destination, "postgres").await;
    for db in sample::DATABASES {
        let src = Session::new(connect(&source, db).await, format!("source {db}"));
        let original = schema::read(&src).await.unwrap();
        assert!(!original.tables.is_empty(), "{db}: no tables read");

        dest_admin
            .batch_execute(&ddl::create_database(&original.database, db))
            .await
            .unwrap_or_else(|e| panic!("{db}: {e:?}"));
        let mut dst = connect(&destination, db).await;
        let tx = dst.transaction().await.unwrap();
        for sql in ddl::early_statements(&original) {
            tx.batch_execute(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        }
        tx.commit().await.unwrap();
        // `early_statements` creates the primary keys with the tables (`Keys::WithTables`);
        // the deferred list names them too, for the fast copy's schema that leaves them out.
        for object in ddl::deferred_objects(&original)
            .iter()
            .filter(|o| o.kind != ddl::DeferredKind::PrimaryKey)
        {
            for sql in &object.statements {
                dst.batch_execute(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
            }
        }

        let dst = Session::new(dst, format!("destination {db}"));
        let copy = schema::read(&dst).await.unwrap();
        assert_eq!(copy.database.encoding, original.database.encoding);
        assert_eq!(copy.database.collate, original.database.collate);
        assert_eq!(copy.schemas, original.schemas, "{db}");
        assert_eq!(copy.enums, original.enums, "{db}");
        assert_eq!(copy.types, original.types, "{db}");
        assert_eq!(copy.sequences, original.sequences, "{db}");
        assert_eq!(copy.tables.len(), original.tables.len(), "{db}");
        for (a, b) in original.tables.iter().zip(&copy.tables) {
            assert_eq!(a, b, "{db}: table {} differs", a.name);
        }
    }
}
