//! MSDeploy (Web Deploy) packages: the App Gallery zip, its Manifest.xml options blobs, its writer.
