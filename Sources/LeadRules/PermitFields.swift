import StageKit

/// The canonical fields of a building permit, in the order every flattened permit carries
/// them. The owner's mailing address uses the lead names (mailing_address, mailing_city,
/// mailing_state, mailing_zip) and the site the property_ ones, so one lead-normalize serves
/// both kinds of record. contractor_name and contractor_phone are the contractor a city names
/// on the permit (exported after the seed's 17 columns).
public enum PermitFields {
    public static let canonical = [
        "permit_id", "city", "property_address", "property_city", "property_state", "property_zip",
        "owner_name", "mailing_address", "mailing_city", "mailing_state", "mailing_zip",
        "project_description", "permit_type", "work_type", "market_value", "job_value", "issued_at",
        "contractor_name", "contractor_phone",
    ]
    public static let id = "permit_id"
    /// The permit_ids in the permit_id column of CSV files (exports, retry queues, ledgers).
    /// A file without the column is an error when `required`, else holds none.
    public static func ids(inCSV paths: [String], required: Bool = false) throws -> Set<String> {
        var ids = Set<String>()
        for path in paths {
            let table = try CSVReader.readAll(path)
            guard let column = table.first?.cells.firstIndex(of: id) else {
                if required { throw StageError.data("\(path):1: no \(id) column") }
                continue
            }
            for (_, cells) in table.dropFirst() where column < cells.count { ids.insert(cells[column]) }
        }
        return ids
    }

    /// Fields that hold numbers: null when a city's map does not fill them.
    public static let numeric: Set<String> = ["market_value", "job_value"]
}
